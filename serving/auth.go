package serving

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/strata-mq/strata/internal/errcode"
)

// Token authentication: with tokens configured (ServeOptions.AuthTokens),
// every call on the client port must carry "authorization: Bearer <token>"
// with one of them, or it fails with UNAUTHENTICATED before it reaches the
// node. Every token may do everything: there is no authorization by role.

// TokenAuthOptions returns the server options that require one of tokens
// on every call. They chain after ServerOptions' interceptors, so that the
// refusal is converted to a status like every other error.
func TokenAuthOptions(tokens []string) []grpc.ServerOption {
	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			given, ok := strings.CutPrefix(v, "Bearer ")
			if !ok {
				continue
			}
			for _, t := range tokens {
				if subtle.ConstantTimeCompare([]byte(given), []byte(t)) == 1 {
					return nil
				}
			}
		}
		return errcode.New(errcode.Unauthenticated, "a valid token is required (authorization: Bearer <token>)")
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
