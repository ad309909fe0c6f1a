package tiering

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// OpenStore opens the store a URL names:
//
//	s3://bucket/prefix?endpoint=host:port&secure=false&region=r&part_size=N&max_retries=N
//	file:///absolute/path   or a plain path
//
// For s3, credentials come from the standard AWS environment variables
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); secure
// defaults to true. The bucket is not created and no request is made.
func OpenStore(ctx context.Context, rawURL string) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty object store URL", ErrInvalidKey)
	}
	if !strings.Contains(rawURL, "://") {
		return NewDirStore(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: object store URL: %v", ErrInvalidKey, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%w: file URL with host %q", ErrInvalidKey, u.Host)
		}
		return NewDirStore(u.Path)
	case "s3":
		cfg, err := ParseS3URL(u)
		if err != nil {
			return nil, err
		}
		return NewS3Store(cfg)
	}
	return nil, fmt.Errorf("%w: object store scheme %q (want s3 or file)", ErrInvalidKey, u.Scheme)
}

// ParseS3URL turns s3://bucket/prefix?endpoint=...&secure=... into a config.
func ParseS3URL(u *url.URL) (S3Config, error) {
	cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Secure: true}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "secure", "region", "part_size", "max_retries":
		default:
			return cfg, fmt.Errorf("%w: s3 URL: unknown parameter %q", ErrInvalidKey, k)
		}
	}
	cfg.Endpoint = q.Get("endpoint")
	cfg.Region = q.Get("region")
	var err error
	if v := q.Get("secure"); v != "" {
		if cfg.Secure, err = strconv.ParseBool(v); err != nil {
			return cfg, fmt.Errorf("%w: s3 URL: secure=%q", ErrInvalidKey, v)
		}
	}
	if v := q.Get("part_size"); v != "" {
		if cfg.PartSize, err = strconv.ParseUint(v, 10, 64); err != nil {
			return cfg, fmt.Errorf("%w: s3 URL: part_size=%q", ErrInvalidKey, v)
		}
	}
	if v := q.Get("max_retries"); v != "" {
		if cfg.MaxRetries, err = strconv.Atoi(v); err != nil {
			return cfg, fmt.Errorf("%w: s3 URL: max_retries=%q", ErrInvalidKey, v)
		}
	}
	return cfg, cfg.Validate()
}
