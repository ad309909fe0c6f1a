package tiering

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures an S3Store. Zero values take the documented defaults.
type S3Config struct {
	// Endpoint is host:port of the S3 service. Default "s3.amazonaws.com".
	Endpoint string
	// Bucket must exist (see S3Store.CreateBucket). Required.
	Bucket string
	// Prefix is prepended (with a "/") to every key. Default: none.
	Prefix string
	// AccessKey and SecretKey; when both are empty the standard AWS
	// environment variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and
	// AWS_SESSION_TOKEN) are used.
	AccessKey, SecretKey string
	// Secure selects https. OpenStore defaults it to true unless the URL
	// says secure=false.
	Secure bool
	// Region; default empty (the client discovers it).
	Region string
	// PartSize is the multipart part size: objects at least this large go
	// up in parts of this size. Default 16 MiB; S3's minimum is 5 MiB.
	PartSize uint64
	// MaxRetries is how many times the client tries one request before
	// giving up with ErrUnavailable. Default 3; 1 disables retries.
	MaxRetries int
	// RequestTimeout bounds a request that the caller's context leaves
	// unbounded, per attempt of the HTTP client. Default 60s.
	RequestTimeout time.Duration
}

const (
	defaultPartSize   = 16 << 20
	minPartSize       = 5 << 20
	defaultMaxRetries = 3
)

func (c *S3Config) withDefaults() S3Config {
	d := *c
	if d.Endpoint == "" {
		d.Endpoint = "s3.amazonaws.com"
	}
	if d.PartSize == 0 {
		d.PartSize = defaultPartSize
	}
	if d.MaxRetries == 0 {
		d.MaxRetries = defaultMaxRetries
	}
	if d.RequestTimeout == 0 {
		d.RequestTimeout = 60 * time.Second
	}
	d.Prefix = strings.Trim(d.Prefix, "/")
	return d
}

// Validate checks the config after defaults are applied.
func (c *S3Config) Validate() error {
	d := c.withDefaults()
	switch {
	case d.Bucket == "":
		return fmt.Errorf("%w: s3: bucket required", ErrInvalidKey)
	case d.PartSize < minPartSize:
		return fmt.Errorf("%w: s3: part size %d below S3's 5 MiB minimum", ErrInvalidKey, d.PartSize)
	case d.MaxRetries < 0:
		return fmt.Errorf("%w: s3: negative retries", ErrInvalidKey)
	}
	if d.Prefix != "" {
		if err := checkKey(d.Prefix); err != nil {
			return err
		}
	}
	return nil
}

// S3Store is a Store over an S3-compatible service through minio-go.
type S3Store struct {
	cfg    S3Config
	client *minio.Client
}

// NewS3Store connects lazily: no request is made until the first call.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	creds := credentials.NewEnvAWS()
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	tr.ResponseHeaderTimeout = cfg.RequestTimeout
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		Transport:    tr,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: s3: %v", ErrInvalidKey, err)
	}
	return &S3Store{cfg: cfg, client: client}, nil
}

// CreateBucket creates the configured bucket if it does not exist.
func (s *S3Store) CreateBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return s.err(ctx, "", err)
	}
	if ok {
		return nil
	}
	if err := s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region}); err != nil {
		return s.err(ctx, "", err)
	}
	return nil
}

func (s *S3Store) name(key string) string {
	if s.cfg.Prefix == "" {
		return key
	}
	return s.cfg.Prefix + "/" + key
}

// Put implements Store. Objects of PartSize bytes or more are uploaded in
// parts; every part carries a CRC32C checksum the service verifies.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.name(key), r, size, minio.PutObjectOptions{
		PartSize:     s.cfg.PartSize,
		ContentType:  "application/vnd.apache.arrow.file",
		AutoChecksum: minio.ChecksumCRC32C,
	})
	return s.err(ctx, key, err)
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("%w: %s offset %d", ErrInvalidRange, key, offset)
	}
	if length == 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		_, err = checkRange(key, info.Size, offset, 0)
		return []byte{}, err
	}
	var opts minio.GetObjectOptions
	if offset > 0 || length > 0 {
		end := int64(0) // 0 with start > 0 means "to the end" for minio-go
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidRange, err)
		}
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.name(key), opts)
	if err != nil {
		return nil, s.err(ctx, key, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return nil, s.err(ctx, key, err)
	}
	if length < 0 {
		length = info.Size
	}
	// info.Size is the length of the returned range; a range that runs past
	// the object's end comes back short.
	if info.Size != length {
		return nil, fmt.Errorf("%w: %s [%d,+%d)", ErrInvalidRange, key, offset, length)
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(obj, buf); err != nil {
		return nil, s.err(ctx, key, err)
	}
	return buf, nil
}

// Stat implements Store.
func (s *S3Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.err(ctx, key, err)
	}
	return ObjectInfo{Key: key, Size: info.Size}, nil
}

// List implements Store.
func (s *S3Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine of minio-go
	full := s.name(prefix)
	if prefix == "" && s.cfg.Prefix != "" {
		full = s.cfg.Prefix + "/"
	}
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if obj.Err != nil {
			return s.err(ctx, prefix, obj.Err)
		}
		key := obj.Key
		if s.cfg.Prefix != "" {
			key = strings.TrimPrefix(key, s.cfg.Prefix+"/")
		}
		if err := fn(ObjectInfo{Key: key, Size: obj.Size}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.name(key), minio.RemoveObjectOptions{})
	if err != nil && IsNotFound(s.err(ctx, key, err)) {
		return nil
	}
	return s.err(ctx, key, err)
}

// err classifies a minio-go error: missing objects are ErrNotFound,
// refused credentials ErrDenied, a cancelled context its own error, and
// everything else (network, 5xx, timeouts) ErrUnavailable.
func (s *S3Store) err(ctx context.Context, key string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %s", ErrInvalidRange, key)
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" ||
		resp.Code == "SignatureDoesNotMatch" || resp.Code == minio.NoSuchBucket:
		return fmt.Errorf("%w: %s: %v", ErrDenied, key, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, key, err)
}
