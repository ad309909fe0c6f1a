package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// PEM key files, as `strata tokens create-key-pair` and openssl write
// them: the JWT keys of strata tokens and the nodes, and the encryption
// keys of produce and consume. what names the file in errors.

// readPEMBlock reads the first PEM block of the file at path.
func readPEMBlock(path, what string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s %s: no PEM block in it", what, path)
	}
	return block, nil
}

// readPublicKey reads a PUBLIC KEY (PKIX) block: RSA, ECDSA, Ed25519 or
// X25519.
func readPublicKey(path, what string) (crypto.PublicKey, error) {
	block, err := readPEMBlock(path, what)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w (want a PUBLIC KEY block)", what, path, err)
	}
	return key, nil
}

// readPrivateKey reads a PRIVATE KEY (PKCS #8), RSA PRIVATE KEY (PKCS #1)
// or EC PRIVATE KEY block.
func readPrivateKey(path, what string) (crypto.PrivateKey, error) {
	block, err := readPEMBlock(path, what)
	if err != nil {
		return nil, err
	}
	var key crypto.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return key, nil
}
