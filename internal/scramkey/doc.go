// Package scramkey derives the SCRAM keys Kafka stores for a user (RFC 5802, RFC 7677): from
// a password, a salt and an iteration count the salted password (PBKDF2-HMAC), and from the
// salted password the StoredKey and ServerKey. The password itself and the salted password are
// never stored; a credential is (salt, iterations, StoredKey, ServerKey), as Kafka keeps it.
//
// Mechanism numbers are Kafka's (DescribeUserScramCredentials, AlterUserScramCredentials):
// 1 SCRAM-SHA-256, 2 SCRAM-SHA-512. Iteration bounds are Kafka's: 4096 to 16384.
//
// It imports only the standard library; the gateway (SASL PLAIN checks, SCRAM conversations),
// the broker (AlterUserScramCredentials upsertions carry a salted password) and cmd/ (the
// bootstrap users) share it.
package scramkey
