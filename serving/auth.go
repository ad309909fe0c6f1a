package serving

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/strata-mq/strata/internal/errcode"
	topicname "github.com/strata-mq/strata/internal/topic"
	meta "github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Authentication and authorization on the client port, as Pulsar's token
// authentication and its namespace permissions.
//
// A call carries "authorization: Bearer <token>". The token is either one
// of the static tokens (AuthConfig.Tokens, each with a role) or a JWT
// signed with AuthConfig.JWTKey, whose subject is the role and whose
// expiry, when it has one, is enforced. Without a valid token the call
// fails as UNAUTHENTICATED before it reaches the node.
//
// With AuthConfig.Authorization the role must also be allowed the call:
// superuser roles may do everything; any other role only what a grant of
// the topic's namespace allows (metadata.Grant): produce, consume, and the
// read-only calls that either allows (lookup, topic metadata, stats,
// listing the namespace's topics). Everything else (creating and deleting
// topics, policies, offload, compaction, grants) is for superusers, as is
// any call this file does not name: a new RPC is refused until it is given
// a rule. A refusal is UNAUTHORIZED.

// AuthConfig configures the client port's authentication and authorization.
type AuthConfig struct {
	// Tokens maps each static token a call may present to its role (which
	// may be empty when Authorization is off).
	Tokens map[string]string
	// JWTKey verifies signed tokens: a []byte secret (HS256/384/512), an
	// *rsa.PublicKey (RS and PS), an *ecdsa.PublicKey (ES) or an
	// ed25519.PublicKey (EdDSA). Nil: no JWTs.
	JWTKey any
	// Authorization checks every call's role against SuperUserRoles and
	// the namespace grants.
	Authorization bool
	// SuperUserRoles may do everything.
	SuperUserRoles []string
}

// Enabled reports whether c asks for anything at all.
func (c AuthConfig) Enabled() bool {
	return len(c.Tokens) > 0 || c.JWTKey != nil || c.Authorization
}

// validate checks that c can be enforced.
func (c AuthConfig) validate() error {
	if c.Authorization && len(c.Tokens) == 0 && c.JWTKey == nil {
		return fmt.Errorf("authorization needs authentication: static tokens or a JWT key")
	}
	if _, err := jwtMethods(c.JWTKey); err != nil {
		return err
	}
	for _, r := range c.SuperUserRoles {
		if err := meta.CheckRole(r); err != nil {
			return fmt.Errorf("superuser role: %w", err)
		}
	}
	if c.Authorization {
		for _, role := range c.Tokens {
			if err := meta.CheckRole(role); err != nil {
				return fmt.Errorf("with authorization every static token needs a role: %w", err)
			}
		}
	}
	return nil
}

// jwtMethods answers the signing methods key verifies (none for nil).
func jwtMethods(key any) ([]string, error) {
	switch key.(type) {
	case nil:
		return nil, nil
	case []byte:
		return []string{"HS256", "HS384", "HS512"}, nil
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		return []string{"ES256", "ES384", "ES512"}, nil
	case ed25519.PublicKey:
		return []string{"EdDSA"}, nil
	}
	return nil, fmt.Errorf("JWT key of type %T: want a secret or an RSA, ECDSA or Ed25519 public key", key)
}

type roleKey struct{}

// RoleOf answers the role a call was authenticated as ("" when the node
// checks no tokens, or the token has no role).
func RoleOf(ctx context.Context) string {
	r, _ := ctx.Value(roleKey{}).(string)
	return r
}

// AuthOptions returns the server options that enforce c on every call
// (nil when c asks for nothing). They chain after ServerOptions'
// interceptors, so that refusals are converted to a status like every
// other error.
func (n *Node) AuthOptions(c AuthConfig) ([]grpc.ServerOption, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	methods, _ := jwtMethods(c.JWTKey)
	a := &authorizer{cfg: c, meta: n.meta, super: map[string]bool{}}
	if c.JWTKey != nil {
		a.parser = jwt.NewParser(jwt.WithValidMethods(methods))
	}
	for _, r := range c.SuperUserRoles {
		a.super[r] = true
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := a.authenticate(ctx)
			if err != nil {
				return nil, err
			}
			if err := a.authorizeUnary(ctx, info.FullMethod, req); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := a.authenticate(ss.Context())
			if err != nil {
				return err
			}
			if !streamRules[methodName(info.FullMethod)] && !a.isSuper(ctx) {
				return a.denied(ctx, methodName(info.FullMethod))
			}
			return h(srv, &authorizedStream{ServerStream: ss, ctx: ctx, a: a})
		}),
	}, nil
}

type authorizer struct {
	cfg    AuthConfig
	meta   Meta
	parser *jwt.Parser
	super  map[string]bool
}

// authenticate answers ctx with the role of the call's token.
func (a *authorizer) authenticate(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		given, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		for t, role := range a.cfg.Tokens {
			if subtle.ConstantTimeCompare([]byte(given), []byte(t)) == 1 {
				return context.WithValue(ctx, roleKey{}, role), nil
			}
		}
		if a.parser == nil {
			continue
		}
		var claims jwt.RegisteredClaims
		if _, err := a.parser.ParseWithClaims(given, &claims, func(*jwt.Token) (any, error) { return a.cfg.JWTKey, nil }); err != nil {
			return ctx, errcode.New(errcode.Unauthenticated, "token refused: %v", err)
		}
		if a.cfg.Authorization && meta.CheckRole(claims.Subject) != nil {
			return ctx, errcode.New(errcode.Unauthenticated, "token refused: its subject %q is not a role", claims.Subject)
		}
		return context.WithValue(ctx, roleKey{}, claims.Subject), nil
	}
	return ctx, errcode.New(errcode.Unauthenticated, "a valid token is required (authorization: Bearer <token>)")
}

func (a *authorizer) isSuper(ctx context.Context) bool {
	return !a.cfg.Authorization || a.super[RoleOf(ctx)]
}

func (a *authorizer) denied(ctx context.Context, what string) error {
	return errcode.New(errcode.Unauthorized, "role %q may not call %s: superusers only", RoleOf(ctx), what)
}

// access is what a call needs of its namespace's grant.
type access int

const (
	accessSuper   access = iota
	accessLookup         // produce or consume
	accessProduce        // produce
	accessConsume        // consume
)

// unaryRules name what each unary call needs; a call not listed is for
// superusers (TestEveryBrokerCallHasAnAuthorizationRule keeps the list
// whole).
var unaryRules = map[string]access{
	"Lookup":             accessLookup,
	"GetTopic":           accessLookup,
	"TopicStats":         accessLookup,
	"ListTopics":         accessLookup,
	"ResetCursor":        accessConsume,
	"DeleteSubscription": accessConsume,
	"CreateSubscription": accessConsume,
	"CreateTopic":        accessSuper,
	"DeleteTopic":        accessSuper,
	"AddPartitions":      accessSuper,
	"ListNamespaces":     accessSuper,
	"DeleteNamespace":    accessSuper,
	"SetNamespacePolicy": accessSuper,
	"GetNamespacePolicy": accessSuper,
	"SetTopicPolicy":     accessSuper,
	"GetTopicPolicy":     accessSuper,
	"RemoveTopicPolicy":  accessSuper,
	"TriggerOffload":     accessSuper,
	"CompactTopic":       accessSuper,
	"UnloadTopic":        accessSuper,
	"ListCluster":        accessSuper,
	"DrainBookie":        accessSuper,
	"ListBookies":        accessSuper,
	"GrantPermission":    accessSuper,
	"RevokePermission":   accessSuper,
	"GetPermissions":     accessSuper,
}

// streamRules lists the streaming calls whose messages authorizedStream
// checks (the producer's open, the subscribe, the compacted read).
var streamRules = map[string]bool{"Produce": true, "Consume": true, "ReadCompacted": true}

func methodName(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

func (a *authorizer) authorizeUnary(ctx context.Context, full string, req any) error {
	name := methodName(full)
	acc, ok := unaryRules[name]
	if !ok || acc == accessSuper {
		if a.isSuper(ctx) {
			return nil
		}
		return a.denied(ctx, name)
	}
	var ns string
	switch r := req.(type) {
	case interface{ GetTopic() string }:
		ns = r.GetTopic()
		if ns == "" {
			return errcode.New(errcode.InvalidTopicName, "no topic named")
		}
		n, err := topicname.Parse(ns)
		if err != nil {
			return err
		}
		ns = n.NamespaceName()
	case interface{ GetNamespace() string }:
		ns = r.GetNamespace()
	}
	if ns == "" { // every namespace: ListTopics of them all
		if a.isSuper(ctx) {
			return nil
		}
		return a.denied(ctx, name+" of every namespace")
	}
	return a.allow(ctx, ns, acc, name)
}

// allowTopic checks acc on topic's namespace.
func (a *authorizer) allowTopic(ctx context.Context, topic string, acc access, what string) error {
	n, err := topicname.Parse(topic)
	if err != nil {
		return err
	}
	return a.allow(ctx, n.NamespaceName(), acc, what)
}

// allow checks that the call's role holds acc in namespace ns.
func (a *authorizer) allow(ctx context.Context, ns string, acc access, what string) error {
	if a.isSuper(ctx) {
		return nil
	}
	role := RoleOf(ctx)
	grants, err := a.meta.GetPermissions(ctx, ns)
	if err != nil {
		return unavailable("reading the permissions of "+ns, err)
	}
	g := grants[role]
	switch acc {
	case accessLookup:
		if g.Allows(meta.ActionProduce) || g.Allows(meta.ActionConsume) {
			return nil
		}
		return errcode.New(errcode.Unauthorized, "role %q may not call %s in %s: it needs produce or consume there", role, what, ns)
	case accessProduce:
		if g.Allows(meta.ActionProduce) {
			return nil
		}
		return errcode.New(errcode.Unauthorized, "role %q may not produce in %s", role, ns)
	case accessConsume:
		if g.Allows(meta.ActionConsume) {
			return nil
		}
		return errcode.New(errcode.Unauthorized, "role %q may not consume in %s", role, ns)
	}
	return a.denied(ctx, what)
}

// authorizedStream checks each message that names a topic as it arrives,
// so a stream never reaches a topic its role may not use.
type authorizedStream struct {
	grpc.ServerStream
	ctx context.Context
	a   *authorizer
}

func (s *authorizedStream) Context() context.Context { return s.ctx }

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	switch r := m.(type) {
	case *servingpb.ProduceRequest:
		if o := r.GetOpen(); o != nil {
			return s.a.allowTopic(s.ctx, o.GetTopic(), accessProduce, "Produce")
		}
	case *servingpb.ConsumeRequest:
		if sub := r.GetSubscribe(); sub != nil {
			return s.a.allowTopic(s.ctx, sub.GetTopic(), accessConsume, "Consume")
		}
	case *servingpb.ReadCompactedRequest:
		return s.a.allowTopic(s.ctx, r.GetTopic(), accessConsume, "ReadCompacted")
	}
	return nil
}
