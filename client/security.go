package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS: a strata+tls:// URL makes every connection of the client, to the
// seeds and to the owners lookups name, use TLS, as Pulsar's pulsar+ssl://
// does. The nodes are verified against the system's certificate
// authorities, or those of TLSCAFile; TLSClientCert adds a client
// certificate for nodes that require one (mutual TLS). AuthToken adds a
// bearer token to every call, for nodes that require one.

const tlsURLScheme = "strata+tls://"

// TLSCAFile makes the client verify nodes against the certificate
// authorities in the PEM file at path instead of the system's. Needs a
// strata+tls:// URL.
func TLSCAFile(path string) Option { return func(c *clientConfig) { c.tlsCAFile = path } }

// TLSClientCert presents the certificate and key in the PEM files to the
// nodes, for nodes that require client certificates (strata serve
// --tls-client-ca-file). Needs a strata+tls:// URL.
func TLSClientCert(certFile, keyFile string) Option {
	return func(c *clientConfig) { c.tlsCertFile, c.tlsKeyFile = certFile, keyFile }
}

// TLSConfig sets the TLS configuration itself, for what the options above
// do not cover; they are applied on top of a clone of it. Needs a
// strata+tls:// URL.
func TLSConfig(cfg *tls.Config) Option { return func(c *clientConfig) { c.tlsConfig = cfg } }

// hasTLSOptions reports whether any TLS option was given.
func (c *clientConfig) hasTLSOptions() bool {
	return c.tlsCAFile != "" || c.tlsCertFile != "" || c.tlsKeyFile != "" || c.tlsConfig != nil
}

// transportCredentials builds the credentials every connection uses:
// insecure ones for a strata:// URL (which TLS options contradict), TLS for
// a strata+tls:// one. Unreadable or invalid files are ErrInvalidArgument.
func (c *clientConfig) transportCredentials(useTLS bool) (credentials.TransportCredentials, error) {
	if !useTLS {
		if c.hasTLSOptions() {
			return nil, invalidArg("TLS options need a %s URL", tlsURLScheme)
		}
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.tlsConfig != nil {
		cfg = c.tlsConfig.Clone()
	}
	if c.tlsCAFile != "" {
		pem, err := os.ReadFile(c.tlsCAFile)
		if err != nil {
			return nil, invalidArg("TLS CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalidArg("TLS CA file %s: no PEM certificate in it", c.tlsCAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.tlsCertFile == "") != (c.tlsKeyFile == "") {
		return nil, invalidArg("TLS client certificate: give both the certificate and the key file")
	}
	if c.tlsCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCertFile, c.tlsKeyFile)
		if err != nil {
			return nil, invalidArg("TLS client certificate: %v", err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return credentials.NewTLS(cfg), nil
}

// AuthToken makes every call carry token ("authorization: Bearer <token>"),
// for nodes that require one (strata serve --auth-token-file). Send it over
// a strata+tls:// URL: on a plain one anybody on the path can read it.
func AuthToken(token string) Option { return func(c *clientConfig) { c.authToken = token } }

// bearer is the per-call credential of AuthToken.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that a plain URL works too (for a
// private network); the documentation says to use TLS.
func (bearer) RequireTransportSecurity() bool { return false }

// cutScheme splits a cluster URL into whether it asks for TLS and the rest.
func cutScheme(url string) (useTLS bool, rest string, ok bool) {
	if rest, ok := strings.CutPrefix(url, tlsURLScheme); ok {
		return true, rest, true
	}
	rest, ok = strings.CutPrefix(url, urlScheme)
	return false, rest, ok
}
