package controller

// KafkaID returns the Kafka broker id the metadata quorum assigned this broker, once its
// registration is applied here (ok false before). A broker's own Kafka listener presents
// itself under it.
func (c *Controller) KafkaID() (id int32, ok bool) {
	for _, m := range c.r.Brokers() {
		if m.RaftID == c.r.RaftID() && m.KafkaID > 0 {
			return m.KafkaID, true
		}
	}
	return 0, false
}
