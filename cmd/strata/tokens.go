package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

// JWT tokens for the serving nodes' --auth-jwt-* flags, as Pulsar's
// `pulsar tokens`: a secret key (HS256) or a key pair (ES256 by default,
// RS256 or EdDSA) to sign with, and tokens whose subject is a role.

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Make keys and JWT tokens for nodes started with --auth-jwt-secret-key-file or --auth-jwt-public-key-file",
	}
	cmd.AddCommand(tokensSecretKeyCmd(), tokensKeyPairCmd(), tokensCreateCmd(), tokensValidateCmd())
	return cmd
}

func tokensSecretKeyCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "create-secret-key [--output FILE]",
		Short: "Make a random 256-bit secret key for HS256 tokens (base64; to stdout, or a file only its owner may read)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			text := base64.StdEncoding.EncodeToString(key) + "\n"
			if output == "" {
				_, err := fmt.Fprint(cmd.OutOrStdout(), text)
				return err
			}
			return os.WriteFile(output, []byte(text), 0o600)
		},
	}
	cmd.Flags().StringVar(&output, "output", "", "file to write the key to (mode 0600)")
	return cmd
}

func tokensKeyPairCmd() *cobra.Command {
	var private, public, algorithm string
	cmd := &cobra.Command{
		Use:   "create-key-pair --private-key FILE --public-key FILE [--algorithm ES256|RS256|EdDSA]",
		Short: "Make a key pair: tokens are signed with the private key, nodes verify them with the public one (PEM)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				priv crypto.Signer
				err  error
			)
			switch strings.ToUpper(algorithm) {
			case "ES256":
				priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			case "RS256":
				priv, err = rsa.GenerateKey(rand.Reader, 2048)
			case "EDDSA":
				_, priv, err = ed25519.GenerateKey(rand.Reader)
			default:
				return fmt.Errorf("--algorithm %q: want ES256, RS256 or EdDSA", algorithm)
			}
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return err
			}
			pub, err := x509.MarshalPKIXPublicKey(priv.Public())
			if err != nil {
				return err
			}
			if err := os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
				return err
			}
			return os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
		},
	}
	cmd.Flags().StringVar(&private, "private-key", "", "file to write the PEM private key to (mode 0600)")
	cmd.Flags().StringVar(&public, "public-key", "", "file to write the PEM public key to")
	cmd.Flags().StringVar(&algorithm, "algorithm", "ES256", "ES256 (ECDSA P-256), RS256 (RSA 2048) or EdDSA (Ed25519)")
	_ = cmd.MarkFlagRequired("private-key")
	_ = cmd.MarkFlagRequired("public-key")
	return cmd
}

func tokensCreateCmd() *cobra.Command {
	var subject, secret, private string
	var expiry time.Duration
	cmd := &cobra.Command{
		Use:   "create --subject ROLE (--secret-key-file FILE | --private-key-file FILE) [--expiry 720h]",
		Short: "Make a token whose subject is a role, signed with a secret key or a private key; prints it",
		Example: `  strata tokens create --subject billing --secret-key-file secret.key --expiry 720h > billing.token
  strata produce --topic acme/orders/created --auth-token-file billing.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := metadata.CheckRole(subject); err != nil {
				return fmt.Errorf("--subject: %w", err)
			}
			key, method, err := signingKey(secret, private)
			if err != nil {
				return err
			}
			claims := jwt.RegisteredClaims{Subject: subject, IssuedAt: jwt.NewNumericDate(time.Now())}
			if expiry < 0 {
				return fmt.Errorf("--expiry %v: want 0 (none) or a positive duration", expiry)
			}
			if expiry > 0 {
				claims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(expiry))
			}
			token, err := jwt.NewWithClaims(method, claims).SignedString(key)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
			return err
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the role the token stands for")
	cmd.Flags().StringVar(&secret, "secret-key-file", "", "sign with this secret key (HS256)")
	cmd.Flags().StringVar(&private, "private-key-file", "", "sign with this PEM private key (ES256, RS256 or EdDSA, by its kind)")
	cmd.Flags().DurationVar(&expiry, "expiry", 0, "the token expires after this long (0: never)")
	_ = cmd.MarkFlagRequired("subject")
	return cmd
}

func tokensValidateCmd() *cobra.Command {
	var secret, public string
	cmd := &cobra.Command{
		Use:   "validate TOKEN (--secret-key-file FILE | --public-key-file FILE)",
		Short: "Check a token's signature and expiry as a node would; prints its subject and expiry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key any
			var err error
			switch {
			case (secret == "") == (public == ""):
				return fmt.Errorf("give --secret-key-file or --public-key-file")
			case secret != "":
				key, err = readSecretKey(secret)
			default:
				key, err = readJWTPublicKey(public)
			}
			if err != nil {
				return err
			}
			methods, err := serving.JWTMethods(key)
			if err != nil {
				return err
			}
			var claims jwt.RegisteredClaims
			if _, err := jwt.NewParser(jwt.WithValidMethods(methods)).ParseWithClaims(strings.TrimSpace(args[0]), &claims,
				func(*jwt.Token) (any, error) { return key, nil }); err != nil {
				return fmt.Errorf("token refused: %w", err)
			}
			exp := "never"
			if claims.ExpiresAt != nil {
				exp = claims.ExpiresAt.UTC().Format(time.RFC3339)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "subject %s, expires %s\n", claims.Subject, exp)
			return err
		},
	}
	cmd.Flags().StringVar(&secret, "secret-key-file", "", "the secret key the token was signed with")
	cmd.Flags().StringVar(&public, "public-key-file", "", "the PEM public key of the private key the token was signed with")
	return cmd
}

// signingKey reads the key to sign with from one of the two files.
func signingKey(secret, private string) (any, jwt.SigningMethod, error) {
	switch {
	case (secret == "") == (private == ""):
		return nil, nil, fmt.Errorf("give --secret-key-file or --private-key-file")
	case secret != "":
		key, err := readSecretKey(secret)
		return key, jwt.SigningMethodHS256, err
	}
	key, err := readPrivateKey(private, "private key")
	if err != nil {
		return nil, nil, err
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, nil, fmt.Errorf("private key %s: only P-256 ECDSA keys (ES256)", private)
		}
		return k, jwt.SigningMethodES256, nil
	case *rsa.PrivateKey:
		return k, jwt.SigningMethodRS256, nil
	case ed25519.PrivateKey:
		return k, jwt.SigningMethodEdDSA, nil
	}
	return nil, nil, fmt.Errorf("private key %s: a %T, want ECDSA, RSA or Ed25519", private, key)
}

// readSecretKey reads a base64 secret key of at least 256 bits.
func readSecretKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("secret key %s: not base64 (strata tokens create-secret-key makes one): %w", path, err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("secret key %s: %d bytes, want at least 32", path, len(key))
	}
	return key, nil
}

// readJWTPublicKey reads a PEM (PKIX) RSA, ECDSA or Ed25519 public key.
func readJWTPublicKey(path string) (any, error) {
	key, err := readPublicKey(path, "public key")
	if err != nil {
		return nil, err
	}
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return key, nil
	}
	return nil, fmt.Errorf("public key %s: a %T, want RSA, ECDSA or Ed25519", path, key)
}
