package gateway

// SetAuthHook makes s call f with the principal of every connection that authenticates (SASL
// or a TLS client certificate), and whether it was a re-authentication. Tests only; set
// before serving.
func SetAuthHook(s *Server, f func(principal string, reauth bool)) { s.authHook = f }
