package serving

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

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
// listing the namespace's topics). A tenant's admin roles (metadata.Tenant)
// may do everything within the tenant: create and delete topics, set
// policies, grant permissions, produce and consume. What spans tenants
// (the cluster's nodes and bookies, tenants' admins) is for superusers, as
// is any call this file does not name: a new RPC is refused until it is
// given a rule. A refusal is UNAUTHORIZED.

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
	// GrantCacheTTL is how long a node keeps the grants and tenant admins
	// it read (default 1 s; negative: read them at every check). A change
	// made at another node applies here within it.
	GrantCacheTTL time.Duration
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
	if _, err := JWTMethods(c.JWTKey); err != nil {
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
func JWTMethods(key any) ([]string, error) {
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
	methods, _ := JWTMethods(c.JWTKey)
	ttl := c.GrantCacheTTL
	if ttl == 0 {
		ttl = time.Second
	}
	n.access = newRecordCache(n.meta, max(ttl, 0), n.cfg.MetaTimeout)
	a := &authorizer{cfg: c, access: n.access, super: map[string]bool{}}
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
	access *recordCache
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
	accessSuper       access = iota
	accessTenantAdmin        // an admin of the call's tenant
	accessLookup             // produce or consume
	accessProduce            // produce
	accessConsume            // consume
)

// unaryRules name what each unary call needs; a call not listed is for
// superusers (TestEveryBrokerCallHasAnAuthorizationRule keeps the list
// whole). Superusers may make every call; a tenant's admins every call
// within their tenant.
var unaryRules = map[string]access{
	"Lookup":             accessLookup,
	"GetTopic":           accessLookup,
	"TopicStats":         accessLookup,
	"ListTopics":         accessLookup,
	"ResetCursor":        accessConsume,
	"DeleteSubscription": accessConsume,
	"CreateSubscription": accessConsume,
	"CreateTopic":        accessTenantAdmin,
	"DeleteTopic":        accessTenantAdmin,
	"AddPartitions":      accessTenantAdmin,
	"ListNamespaces":     accessTenantAdmin,
	"DeleteNamespace":    accessTenantAdmin,
	"SetNamespacePolicy": accessTenantAdmin,
	"GetNamespacePolicy": accessTenantAdmin,
	"SetTopicPolicy":     accessTenantAdmin,
	"GetTopicPolicy":     accessTenantAdmin,
	"RemoveTopicPolicy":  accessTenantAdmin,
	"TriggerOffload":     accessTenantAdmin,
	"CompactTopic":       accessTenantAdmin,
	"UnloadTopic":        accessTenantAdmin,
	"TerminateTopic":     accessTenantAdmin,
	"GrantPermission":    accessTenantAdmin,
	"RevokePermission":   accessTenantAdmin,
	"GetPermissions":     accessTenantAdmin,
	"GetTenant":          accessTenantAdmin,
	"SetTenant":          accessSuper,
	"ListCluster":        accessSuper,
	"DrainBookie":        accessSuper,
	"ListBookies":        accessSuper,
	// Reading a schema is for who may use the topic; changing one, for
	// admins (producers add versions as they open, by their grant).
	"GetSchema":               accessLookup,
	"ListSchemas":             accessLookup,
	"TestSchemaCompatibility": accessLookup,
	"CreateSchema":            accessTenantAdmin,
	"DeleteSchema":            accessTenantAdmin,
}

// streamRules lists the streaming calls whose messages authorizedStream
// checks (the producer's open, the subscribe, the compacted read).
var streamRules = map[string]bool{"Produce": true, "Consume": true, "ReadCompacted": true}

func methodName(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

// target answers the tenant and namespace a request is about (empty when
// it names none, as a listing of every namespace does).
func target(req any) (tenant, ns, topic string, err error) {
	if r, ok := req.(interface{ GetTopic() string }); ok && r.GetTopic() != "" {
		n, err := topicname.Parse(r.GetTopic())
		if err != nil {
			return "", "", "", err
		}
		if i, parent := n.PartitionIndex(); i >= 0 {
			n = parent // a topic's grants cover its partitions
		}
		return n.Tenant, n.NamespaceName(), n.String(), nil
	}
	if r, ok := req.(interface{ GetNamespace() string }); ok && r.GetNamespace() != "" {
		t, _, err := topicname.ParseNamespace(r.GetNamespace())
		return t, r.GetNamespace(), "", err
	}
	if r, ok := req.(interface{ GetTenant() string }); ok {
		return r.GetTenant(), "", "", nil
	}
	if _, ok := req.(interface{ GetTopic() string }); ok {
		return "", "", "", errcode.New(errcode.InvalidTopicName, "no topic named")
	}
	return "", "", "", nil
}

func (a *authorizer) authorizeUnary(ctx context.Context, full string, req any) error {
	if a.isSuper(ctx) {
		return nil
	}
	name := methodName(full)
	acc, ok := unaryRules[name]
	if !ok || acc == accessSuper {
		return a.denied(ctx, name)
	}
	tenant, ns, topic, err := target(req)
	if err != nil {
		return err
	}
	switch {
	case tenant == "": // every tenant or namespace: ListTopics of them all, say
		return a.denied(ctx, name+" across tenants")
	case acc == accessTenantAdmin || ns == "":
		return a.allowAdmin(ctx, tenant, name)
	}
	return a.allow(ctx, tenant, ns, topic, acc, name)
}

// allowTopic checks acc on topic's namespace.
func (a *authorizer) allowTopic(ctx context.Context, topic string, acc access, what string) error {
	if a.isSuper(ctx) {
		return nil
	}
	n, err := topicname.Parse(topic)
	if err != nil {
		return err
	}
	if i, parent := n.PartitionIndex(); i >= 0 {
		n = parent
	}
	return a.allow(ctx, n.Tenant, n.NamespaceName(), n.String(), acc, what)
}

// isTenantAdmin reports whether the call's role administers tenant.
func (a *authorizer) isTenantAdmin(ctx context.Context, tenant string) (bool, error) {
	t, err := a.access.tenant(ctx, tenant)
	if err != nil {
		return false, unavailable("reading tenant "+tenant, err)
	}
	return slices.Contains(t.AdminRoles, RoleOf(ctx)), nil
}

// allowAdmin checks that the call's role administers tenant.
func (a *authorizer) allowAdmin(ctx context.Context, tenant, what string) error {
	ok, err := a.isTenantAdmin(ctx, tenant)
	if err != nil || ok {
		return err
	}
	return errcode.New(errcode.Unauthorized, "role %q may not call %s in tenant %s: superusers and the tenant's admins only", RoleOf(ctx), what, tenant)
}

// allow checks that the call's role holds acc in namespace ns, by a grant
// of the namespace, of the topic (when the call names one; a partitioned
// topic's, for a partition), or as an admin of its tenant.
func (a *authorizer) allow(ctx context.Context, tenant, ns, topic string, acc access, what string) error {
	role := RoleOf(ctx)
	var need string
	ok := func(g meta.Grant) bool {
		switch acc {
		case accessLookup:
			need = "produce or consume"
			return g.Allows(meta.ActionProduce) || g.Allows(meta.ActionConsume)
		case accessProduce:
			need = "produce"
			return g.Allows(meta.ActionProduce)
		case accessConsume:
			need = "consume"
			return g.Allows(meta.ActionConsume)
		}
		return false
	}
	grants, err := a.access.permissions(ctx, ns)
	if err != nil {
		return unavailable("reading the permissions of "+ns, err)
	}
	if ok(grants[role]) {
		return nil
	}
	if topic != "" {
		tg, err := a.access.topicPermissions(ctx, topic)
		if err != nil {
			return unavailable("reading the permissions of "+topic, err)
		}
		if ok(tg[role]) {
			return nil
		}
	}
	if admin, err := a.isTenantAdmin(ctx, tenant); err != nil || admin {
		return err
	}
	where := ns
	if topic != "" {
		where = topic + " or " + ns
	}
	return errcode.New(errcode.Unauthorized, "role %q may not call %s: it needs a grant of %s on %s", role, what, need, where)
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
