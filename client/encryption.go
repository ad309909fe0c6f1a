package client

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
)

// End-to-end encryption, as Pulsar's: a producer with ProducerEncryption
// encrypts each payload with AES-256-GCM under a data key of its own, and
// sends that key with the message wrapped for each recipient key it was
// given (RSA-OAEP with SHA-256 for RSA keys; ECDH with an ephemeral key,
// HKDF-SHA256 and AES-256-GCM for ECDH keys: X25519, P-256 and the other
// NIST curves). Serving nodes, bookies and the object store only ever hold
// ciphertext. A consumer with ConsumerDecryption asks its key reader for
// the private key of a name the message was wrapped for, and opens the
// payload; what it does when it cannot is its ConsumerCryptoFailureAction.
//
// Keys, properties and the event time are not encrypted, only the
// payload. The data key is replaced every EncryptionKeyRotation. Each
// message carries its wrapped data keys (about 350 bytes for an RSA-2048
// key, 110 for P-256), so that it can be opened alone wherever a consumer
// starts; and an encrypted payload does not compress.

// Message properties of an encrypted message.
const (
	// encKeyPrefix + the key's name: the data key wrapped for that key
	// (base64).
	encKeyPrefix = "__strata_enc_key."
	// encNonce: the payload's AES-GCM nonce (base64).
	encNonce = "__strata_enc_nonce"
)

// EncryptionKeyRotation is how long a producer uses one data key; it also
// changes after maxSealsPerKey payloads, well below the 2^32 that random
// 96-bit GCM nonces allow under one key (NIST SP 800-38D).
const EncryptionKeyRotation = time.Hour

const maxSealsPerKey = 1 << 30

// ErrDecryption is answered by Receive for a message that could not be
// decrypted under CryptoFail: no key could be read for any of its names, or
// it does not open (tampered with, or not for these keys).
var ErrDecryption = errors.New("strata: message could not be decrypted")

// EncryptionKey is a recipient's public key under a name that consumers'
// key readers know it by (a file name, a key id in a vault).
type EncryptionKey struct {
	Name string
	// Key is an *rsa.PublicKey, an *ecdh.PublicKey, or an *ecdsa.PublicKey.
	Key crypto.PublicKey
}

// ProducerEncryption encrypts every payload for each of keys (any one of
// their private keys opens it).
func ProducerEncryption(keys ...EncryptionKey) ProducerOption {
	return func(pc *producerConfig) { pc.encryption = keys }
}

// ConsumerCryptoFailureAction is what a consumer does with a message it
// cannot decrypt, as Pulsar's.
type ConsumerCryptoFailureAction int

const (
	// CryptoFail negatively acknowledges the message (it comes back after
	// the nack delay, and goes to the dead-letter topic when one is set)
	// and Receive answers an error wrapping ErrDecryption.
	CryptoFail ConsumerCryptoFailureAction = iota
	// CryptoDiscard acknowledges the message and goes on.
	CryptoDiscard
	// CryptoConsume hands the message out still encrypted
	// (Message.Encrypted).
	CryptoConsume
)

// DecryptionKeyReader answers the private key of the named key (an
// *rsa.PrivateKey, *ecdh.PrivateKey or *ecdsa.PrivateKey), or an error when
// the consumer has none by that name.
type DecryptionKeyReader func(name string) (crypto.PrivateKey, error)

// ConsumerDecryption decrypts the payloads of encrypted messages with the
// keys keys answers; on failure, action.
func ConsumerDecryption(keys DecryptionKeyReader, action ConsumerCryptoFailureAction) ConsumerOption {
	return func(c *consumerConfig) { c.decryptKeys, c.cryptoFailure = keys, action }
}

// ReaderDecryption is ConsumerDecryption for a Reader: under CryptoFail,
// Next answers an error wrapping ErrDecryption and the reader reads the
// message again later (a message of the topic's compaction is not read
// again: the reader goes on with the next).
func ReaderDecryption(keys DecryptionKeyReader, action ConsumerCryptoFailureAction) ReaderOption {
	return func(c *readerConfig) { c.decryptKeys, c.cryptoFailure = keys, action }
}

// encryptor seals a producer's payloads.
type encryptor struct {
	keys []EncryptionKey
	mu   struct {
		sync.Mutex
		aead    cipher.AEAD
		wrapped map[string]string // the data key, wrapped, by property
		since   time.Time
		seals   int64 // payloads sealed under it
	}
}

func newEncryptor(keys []EncryptionKey) (*encryptor, error) {
	if len(keys) == 0 {
		return nil, invalidArg("encryption needs at least one key")
	}
	for _, k := range keys {
		if k.Name == "" || strings.ContainsAny(k.Name, "\x00") {
			return nil, invalidArg("encryption key name %q", k.Name)
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdh.PublicKey, *ecdsa.PublicKey:
		default:
			return nil, invalidArg("encryption key %s: %T is not an RSA, ECDH or ECDSA public key", k.Name, k.Key)
		}
	}
	e := &encryptor{keys: keys}
	if err := e.rotateLocked(time.Now()); err != nil {
		return nil, err
	}
	return e, nil
}

// rotateLocked makes a new data key and wraps it for every key.
func (e *encryptor) rotateLocked(now time.Time) error {
	dk := make([]byte, 32)
	rand.Read(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return err
	}
	wrapped := make(map[string]string, len(e.keys))
	for _, k := range e.keys {
		w, err := wrapKey(k.Key, dk)
		if err != nil {
			return invalidArg("encryption key %s: %v", k.Name, err)
		}
		wrapped[encKeyPrefix+k.Name] = base64.StdEncoding.EncodeToString(w)
	}
	e.mu.aead, e.mu.wrapped, e.mu.since, e.mu.seals = aead, wrapped, now, 0
	return nil
}

// seal answers a copy of m with its payload encrypted and the properties
// that open it.
func (e *encryptor) seal(m *ProducerMessage) (*ProducerMessage, error) {
	e.mu.Lock()
	e.mu.seals++
	if now := time.Now(); now.Sub(e.mu.since) >= EncryptionKeyRotation || e.mu.seals > maxSealsPerKey {
		if err := e.rotateLocked(now); err != nil {
			e.mu.Unlock()
			return nil, err
		}
	}
	aead, wrapped := e.mu.aead, e.mu.wrapped
	e.mu.Unlock()
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := *m
	out.Payload = aead.Seal(nil, nonce, m.Payload, nil)
	out.Properties = make(map[string]string, len(m.Properties)+len(wrapped)+1)
	maps.Copy(out.Properties, m.Properties)
	maps.Copy(out.Properties, wrapped)
	out.Properties[encNonce] = base64.StdEncoding.EncodeToString(nonce)
	return &out, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// ecdhInfo binds a key derived by ECDH to its use.
const ecdhInfo = "strata data key"

// wrapKey wraps the data key dk for pub.
func wrapKey(pub crypto.PublicKey, dk []byte) ([]byte, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.EncryptOAEP(sha256.New(), rand.Reader, k, dk, []byte(ecdhInfo))
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		return wrapECDH(e, dk)
	case *ecdh.PublicKey:
		return wrapECDH(k, dk)
	}
	return nil, fmt.Errorf("unsupported key %T", pub)
}

// wrapECDH: an ephemeral key's public half, then the data key sealed with
// AES-256-GCM under HKDF(ECDH(ephemeral, pub)), its nonce first.
func wrapECDH(pub *ecdh.PublicKey, dk []byte) ([]byte, error) {
	eph, err := pub.Curve().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, err
	}
	ephPub := eph.PublicKey().Bytes()
	aead, err := kekCipher(shared, ephPub)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte{byte(len(ephPub))}, ephPub...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, dk, nil), nil
}

// kekCipher is the cipher that wraps a data key: AES-256-GCM under
// HKDF-SHA256 of the ECDH secret, salted with the ephemeral public key.
func kekCipher(shared, ephPub []byte) (cipher.AEAD, error) {
	kek, err := hkdf.Key(sha256.New, shared, ephPub, ecdhInfo, 32)
	if err != nil {
		return nil, err
	}
	return newGCM(kek)
}

// unwrapKey opens a data key wrapped for priv's public key.
func unwrapKey(priv crypto.PrivateKey, w []byte) ([]byte, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return rsa.DecryptOAEP(sha256.New(), nil, k, w, []byte(ecdhInfo))
	case *ecdsa.PrivateKey:
		e, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		return unwrapECDH(e, w)
	case *ecdh.PrivateKey:
		return unwrapECDH(k, w)
	}
	return nil, fmt.Errorf("unsupported key %T", priv)
}

func unwrapECDH(priv *ecdh.PrivateKey, w []byte) ([]byte, error) {
	if len(w) < 1 || len(w) < 1+int(w[0])+12 {
		return nil, errors.New("wrapped key too short")
	}
	ephPub, rest := w[1:1+int(w[0])], w[1+int(w[0]):]
	eph, err := priv.Curve().NewPublicKey(ephPub)
	if err != nil {
		return nil, err
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		return nil, err
	}
	aead, err := kekCipher(shared, ephPub)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	return aead.Open(nil, rest[:n], rest[n:], nil)
}

// encrypted reports whether m carries an encrypted payload.
func encrypted(props map[string]string) bool {
	_, ok := props[encNonce]
	return ok
}

// decryptor opens consumers' messages.
type decryptor struct {
	keys   DecryptionKeyReader
	action ConsumerCryptoFailureAction
	mu     struct {
		sync.Mutex
		aeads map[string]cipher.AEAD // by wrapped key, so a data key is unwrapped once
	}
}

// maxCachedDataKeys bounds the data keys a consumer keeps unwrapped.
const maxCachedDataKeys = 1024

func newDecryptor(keys DecryptionKeyReader, action ConsumerCryptoFailureAction) *decryptor {
	d := &decryptor{keys: keys, action: action}
	d.mu.aeads = make(map[string]cipher.AEAD)
	return d
}

// open decrypts m in place and strips the encryption properties; m is left
// as it was on failure.
func (d *decryptor) open(m *Message) error {
	nonce, err := base64.StdEncoding.DecodeString(m.Properties[encNonce])
	if err != nil {
		return fmt.Errorf("%w: bad nonce", ErrDecryption)
	}
	var names []string
	for k, w := range m.Properties {
		name, ok := strings.CutPrefix(k, encKeyPrefix)
		if !ok {
			continue
		}
		names = append(names, name)
		aead, err := d.dataKey(name, w)
		if err != nil || len(nonce) != aead.NonceSize() {
			continue
		}
		plain, err := aead.Open(nil, nonce, m.Payload, nil)
		if err != nil {
			return fmt.Errorf("%w: the payload does not open under key %s (tampered with?)", ErrDecryption, name)
		}
		m.Payload = plain
		props := maps.Clone(m.Properties)
		maps.DeleteFunc(props, func(k, _ string) bool { return k == encNonce || strings.HasPrefix(k, encKeyPrefix) })
		m.Properties = props
		return nil
	}
	return fmt.Errorf("%w: no private key for any of %v", ErrDecryption, names)
}

// dataKey answers the cipher of a data key wrapped for name.
func (d *decryptor) dataKey(name, wrapped string) (cipher.AEAD, error) {
	d.mu.Lock()
	aead, ok := d.mu.aeads[wrapped]
	d.mu.Unlock()
	if ok {
		return aead, nil
	}
	priv, err := d.keys(name)
	if err != nil || priv == nil {
		return nil, fmt.Errorf("no key %s: %v", name, err)
	}
	w, err := base64.StdEncoding.DecodeString(wrapped)
	if err != nil {
		return nil, err
	}
	dk, err := unwrapKey(priv, w)
	if err != nil {
		return nil, err
	}
	if aead, err = newGCM(dk); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if len(d.mu.aeads) >= maxCachedDataKeys {
		clear(d.mu.aeads)
	}
	d.mu.aeads[wrapped] = aead
	d.mu.Unlock()
	return aead, nil
}

// decrypt opens an encrypted message handed out by c; it answers whether to
// give it to the application, or the error Receive answers (CryptoFail).
func (c *Consumer) decrypt(m *Message) (bool, error) {
	if c.dec == nil {
		m.Encrypted = true
		return true, nil
	}
	err := c.dec.open(m)
	if err == nil {
		m.Encrypted = false
		return true, nil
	}
	switch c.dec.action {
	case CryptoDiscard:
		_ = c.Ack(m)
		return false, nil
	case CryptoConsume:
		m.Encrypted = true
		return true, nil
	}
	_ = c.Nack(m)
	return false, fmt.Errorf("message %v: %w", m.ID, err)
}
