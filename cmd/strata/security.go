package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/serving"
)

// TLS, token authentication and authorization on the client port of a
// serving node (serve, standalone), and TLS and tokens in the client
// commands. The bookies and etcd stay open: they belong on the cluster's
// private network (docs/operations.md). The HTTP port's TLS and admin API
// are in adminapi.go.

// addServerSecurityFlags adds the serving node's TLS, authentication and
// authorization flags.
func addServerSecurityFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("tls-cert-file", "", "PEM certificate (chain) for TLS on the client port; with --tls-key-file. Clients then use strata+tls://")
	f.String("tls-key-file", "", "PEM private key of --tls-cert-file")
	f.String("tls-client-ca-file", "", "PEM certificate authorities: clients must present a certificate they signed (mutual TLS)")
	f.String("auth-token-file", "", "file of the static tokens clients may present, one per line as TOKEN or ROLE TOKEN (# comments): every call without a valid token fails as UNAUTHENTICATED")
	f.String("auth-jwt-secret-key-file", "", "accept JWTs signed with this secret (HS256; base64, as strata tokens create-secret-key writes it); the subject is the role")
	f.String("auth-jwt-public-key-file", "", "accept JWTs signed with the private key of this PEM public key (RSA, ECDSA or Ed25519, as strata tokens create-key-pair writes it)")
	f.String("bookie-tls-ca-file", "", "dial the bookies over TLS, verifying them with these PEM certificate authorities (bookies started with --tls-cert-file)")
	f.String("bookie-tls-cert-file", "", "PEM certificate to present to bookies that require one (bookies started with --tls-client-ca-file), with --bookie-tls-key-file and --bookie-tls-ca-file; read again when it changes")
	f.String("bookie-tls-key-file", "", "PEM private key of --bookie-tls-cert-file")
	f.Bool("authorization", false, "check every call's role: superusers may do everything, other roles what their namespace grants allow (strata namespaces grant-permission)")
	f.StringSlice("superuser-roles", nil, "roles that may do everything (comma-separated), with --authorization")
	f.Duration("authorization-cache-ttl", time.Second, "how long a node keeps the grants and tenant admins it read; a change made at another node applies here within it (0 or negative: read them at every check)")
}

// serverAuth builds the node's authentication and authorization from the
// flags (addServerSecurityFlags).
func serverAuth(cmd *cobra.Command) (serving.AuthConfig, error) {
	var c serving.AuthConfig
	f := cmd.Flags()
	c.Authorization, _ = f.GetBool("authorization")
	c.GrantCacheTTL, _ = f.GetDuration("authorization-cache-ttl")
	if c.GrantCacheTTL == 0 {
		c.GrantCacheTTL = -1 // 0 on the command line: no cache (AuthConfig's zero is the default)
	}
	c.SuperUserRoles, _ = f.GetStringSlice("superuser-roles")
	if path, _ := f.GetString("auth-token-file"); path != "" {
		tokens, err := readServerTokens(path)
		if err != nil {
			return c, err
		}
		c.Tokens = tokens
	}
	secret, _ := f.GetString("auth-jwt-secret-key-file")
	public, _ := f.GetString("auth-jwt-public-key-file")
	switch {
	case secret != "" && public != "":
		return c, fmt.Errorf("give --auth-jwt-secret-key-file or --auth-jwt-public-key-file, not both")
	case secret != "":
		key, err := readSecretKey(secret)
		if err != nil {
			return c, err
		}
		c.JWTKey = key
	case public != "":
		key, err := readJWTPublicKey(public)
		if err != nil {
			return c, err
		}
		c.JWTKey = key
	}
	if len(c.SuperUserRoles) > 0 && !c.Authorization {
		return c, fmt.Errorf("--superuser-roles needs --authorization")
	}
	return c, nil
}

// readServerTokens reads a static token file: TOKEN or ROLE TOKEN per line.
func readServerTokens(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth tokens: %w", err)
	}
	tokens := map[string]string{}
	for line := range strings.Lines(string(b)) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		switch fields := strings.Fields(t); len(fields) {
		case 1:
			tokens[fields[0]] = ""
		case 2:
			tokens[fields[1]] = fields[0]
		default:
			return nil, fmt.Errorf("auth tokens: %s: a line is TOKEN or ROLE TOKEN, not %d words", path, len(fields))
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("auth tokens: %s holds none", path)
	}
	return tokens, nil
}

// bookieTLS builds the TLS configuration to dial bookies with
// (--bookie-tls-ca-file, and --bookie-tls-cert-file for bookies that
// require client certificates; nil: plain).
func bookieTLS(cmd *cobra.Command) (*tls.Config, error) {
	f := cmd.Flags()
	caFile, _ := f.GetString("bookie-tls-ca-file")
	certFile, _ := f.GetString("bookie-tls-cert-file")
	keyFile, _ := f.GetString("bookie-tls-key-file")
	switch {
	case caFile == "" && certFile == "" && keyFile == "":
		return nil, nil
	case caFile == "":
		return nil, fmt.Errorf("--bookie-tls-cert-file needs --bookie-tls-ca-file")
	case (certFile == "") != (keyFile == ""):
		return nil, fmt.Errorf("give both --bookie-tls-cert-file and --bookie-tls-key-file")
	}
	pool, err := loadCertPool(caFile, "bookie TLS CA")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if certFile != "" {
		certs, err := newCertReloader(certFile, keyFile, newLogger(cmd))
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return certs.get(nil) }
	}
	return cfg, nil
}

// loadCertPool reads the PEM certificates of the file at path; what names
// the file in errors.
func loadCertPool(path, what string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", what, path)
	}
	return pool, nil
}

// serverTLS builds the TLS configuration the flags ask for (nil: none).
func serverTLS(cmd *cobra.Command) (*tls.Config, error) {
	f := cmd.Flags()
	certFile, _ := f.GetString("tls-cert-file")
	keyFile, _ := f.GetString("tls-key-file")
	caFile, _ := f.GetString("tls-client-ca-file")
	switch {
	case certFile == "" && keyFile == "" && caFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("TLS: give both --tls-cert-file and --tls-key-file")
	}
	certs, err := newCertReloader(certFile, keyFile, newLogger(cmd))
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	if caFile != "" {
		pool, err := loadCertPool(caFile, "TLS client CA")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// addClientSecurityFlags adds the client commands' TLS and token flags.
func addClientSecurityFlags(flags *pflag.FlagSet) {
	flags.String("tls-ca-file", "", "with strata+tls://: PEM certificate authorities to verify the nodes with (default: the system's)")
	flags.String("tls-cert-file", "", "with strata+tls://: PEM client certificate, for nodes that require one (with --tls-key-file)")
	flags.String("tls-key-file", "", "PEM private key of --tls-cert-file")
	flags.String("auth-token-file", "", "file holding the token to present, for nodes that require one (default from $STRATA_AUTH_TOKEN_FILE)")
}

// clientSecurityOptions are the SDK options of the client commands' TLS
// and token flags (addClientSecurityFlags).
func clientSecurityOptions(cmd *cobra.Command) ([]client.Option, error) {
	str := func(name string) string { v, _ := cmd.Flags().GetString(name); return v }
	var opts []client.Option
	if ca := str("tls-ca-file"); ca != "" {
		opts = append(opts, client.TLSCAFile(ca))
	}
	if cert, key := str("tls-cert-file"), str("tls-key-file"); cert != "" || key != "" {
		opts = append(opts, client.TLSClientCert(cert, key))
	}
	path := str("auth-token-file")
	if path == "" {
		path = os.Getenv("STRATA_AUTH_TOKEN_FILE")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth token: %w", err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("auth token: %s is empty", path)
		}
		opts = append(opts, client.AuthToken(token))
	}
	return opts, nil
}

// certReloader serves the certificate of a cert and key file pair and
// reads them again when either changes (a renewal by cert-manager or
// certbot), so that a renewed certificate needs no restart: each TLS
// handshake looks at the files' size and modification time, at most once
// a second. A pair that fails to load (caught halfway through a renewal)
// is logged, and the last good one served until the files load again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	return r, nil
}

// fileStamp identifies the files' current contents by size and time.
func (r *certReloader) fileStamp() (string, error) {
	var b strings.Builder
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second {
		return r.cert, nil
	}
	r.checked = time.Now()
	stamp, err := r.fileStamp()
	if err != nil || stamp == r.stamp {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Warn("TLS certificate files changed but do not load; serving the previous certificate", "err", err)
		return r.cert, nil
	}
	r.cert, r.stamp = &cert, stamp
	r.log.Info("TLS certificate reloaded", "cert", r.certFile)
	return r.cert, nil
}
