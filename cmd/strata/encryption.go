package main

import (
	"crypto"
	"fmt"
	"strings"

	"github.com/strata-mq/strata/client"
)

// End-to-end encryption in the client commands: produce
// --encryption-key NAME=PUBLIC.pem, consume --decryption-key
// NAME=PRIVATE.pem (PEM files as strata tokens create-key-pair and openssl
// write them).

// cutNamedFile splits NAME=PATH.
func cutNamedFile(flag, s string) (string, string, error) {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return "", "", fmt.Errorf("--%s %q: want NAME=FILE", flag, s)
	}
	return name, path, nil
}

// encryptionKeys reads --encryption-key values.
func encryptionKeys(specs []string) ([]client.EncryptionKey, error) {
	var keys []client.EncryptionKey
	for _, s := range specs {
		name, path, err := cutNamedFile("encryption-key", s)
		if err != nil {
			return nil, err
		}
		pub, err := readPublicKey(path, "encryption key")
		if err != nil {
			return nil, err
		}
		keys = append(keys, client.EncryptionKey{Name: name, Key: pub})
	}
	return keys, nil
}

// decryptionKeys reads --decryption-key values into a key reader.
func decryptionKeys(specs []string) (client.DecryptionKeyReader, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	privs := map[string]crypto.PrivateKey{}
	for _, s := range specs {
		name, path, err := cutNamedFile("decryption-key", s)
		if err != nil {
			return nil, err
		}
		priv, err := readPrivateKey(path, "decryption key")
		if err != nil {
			return nil, err
		}
		privs[name] = priv
	}
	return func(name string) (crypto.PrivateKey, error) {
		if p, ok := privs[name]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("no --decryption-key named %s", name)
	}, nil
}

// parseCryptoFailure reads --crypto-failure.
func parseCryptoFailure(s string) (client.ConsumerCryptoFailureAction, error) {
	switch strings.ToLower(s) {
	case "fail":
		return client.CryptoFail, nil
	case "discard":
		return client.CryptoDiscard, nil
	case "consume":
		return client.CryptoConsume, nil
	}
	return 0, fmt.Errorf("--crypto-failure %q: want fail, discard or consume", s)
}
