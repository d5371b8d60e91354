package auth

import (
	"encoding/base64"
	"sort"
)

// JWK is one public key of a JSON Web Key Set: an Ed25519 key as RFC 8037
// writes it (kty OKP, crv Ed25519, x the raw public key in base64url).
type JWK struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	KeyID     string `json:"kid"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
}

// JWKS is a JSON Web Key Set (RFC 7517 §5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys of cfg as a key set, sorted by kid: during a
// rotation both the old and the new key are listed.
func (cfg JWTConfig) JWKS() JWKS {
	set := JWKS{Keys: make([]JWK, 0, len(cfg.PublicKeys))}
	for kid, k := range cfg.PublicKeys {
		set.Keys = append(set.Keys, JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k),
			KeyID: kid, Use: "sig", Algorithm: Algorithm})
	}
	sort.Slice(set.Keys, func(i, j int) bool { return set.Keys[i].KeyID < set.Keys[j].KeyID })
	return set
}
