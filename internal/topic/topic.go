package topic

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-mq/strata/internal/errcode"
)

// Defaults implied by a bare topic name.
const (
	DefaultTenant    = "public"
	DefaultNamespace = "default"
	maxPartLen       = 128
	partitionMark    = "-partition-"
)

// ErrInvalidName is the sentinel for every invalid topic or namespace name.
var ErrInvalidName = errcode.New(errcode.InvalidTopicName, "invalid name")

// Name is a parsed topic name.
type Name struct {
	Tenant    string
	Namespace string
	Local     string
}

// Parse validates s and returns its parts; a bare name gets public/default.
func Parse(s string) (Name, error) {
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 1:
		parts = []string{DefaultTenant, DefaultNamespace, parts[0]}
	case 3:
	default:
		return Name{}, invalid(s, "want tenant/namespace/name or a bare name")
	}
	for _, p := range parts {
		if err := checkPart(p); err != nil {
			return Name{}, invalid(s, err.Error())
		}
	}
	return Name{Tenant: parts[0], Namespace: parts[1], Local: parts[2]}, nil
}

// Canonical returns the full tenant/namespace/name form of s.
func Canonical(s string) (string, error) {
	n, err := Parse(s)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// ParseNamespace validates tenant/namespace.
func ParseNamespace(s string) (tenant, namespace string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 {
		return "", "", invalid(s, "want tenant/namespace")
	}
	for _, p := range parts {
		if err := checkPart(p); err != nil {
			return "", "", invalid(s, err.Error())
		}
	}
	return parts[0], parts[1], nil
}

// CheckTenant validates a tenant name (one part of a topic name).
func CheckTenant(s string) error {
	if err := checkPart(s); err != nil {
		return invalid(s, err.Error())
	}
	return nil
}

func (n Name) String() string { return n.Tenant + "/" + n.Namespace + "/" + n.Local }

// NamespaceName returns tenant/namespace.
func (n Name) NamespaceName() string { return n.Tenant + "/" + n.Namespace }

// Partition returns the name of partition i of n.
func (n Name) Partition(i int) Name {
	n.Local = n.Local + partitionMark + strconv.Itoa(i)
	return n
}

// PartitionIndex returns the partition index of a partition's name and the
// name of its partitioned topic, or -1 and n when n is not a partition.
func (n Name) PartitionIndex() (int, Name) {
	i := strings.LastIndex(n.Local, partitionMark)
	if i < 0 {
		return -1, n
	}
	idx, err := strconv.Atoi(n.Local[i+len(partitionMark):])
	if err != nil || idx < 0 {
		return -1, n
	}
	parent := n
	parent.Local = n.Local[:i]
	return idx, parent
}

func checkPart(p string) error {
	if p == "" {
		return fmt.Errorf("empty part")
	}
	if len(p) > maxPartLen {
		return fmt.Errorf("part longer than %d characters", maxPartLen)
	}
	if p == "." || p == ".." {
		return fmt.Errorf("part %q is reserved", p)
	}
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("character %q not allowed", r)
		}
	}
	return nil
}

// MaxSubscriptionBytes bounds a subscription name.
const MaxSubscriptionBytes = 256

// CheckSubscription is INVALID_SUBSCRIPTION for a name no cursor can be
// stored under: empty, over MaxSubscriptionBytes, or holding a '/' or a
// control character (it is the last element of a metadata key). The SDK
// checks it before a lookup, which may create the topic, and the node
// before it changes anything.
func CheckSubscription(name string) error {
	if name == "" || len(name) > MaxSubscriptionBytes {
		return errcode.New(errcode.InvalidSubscription, "subscription name %q must be 1 to %d bytes", name, MaxSubscriptionBytes)
	}
	if strings.ContainsRune(name, '/') || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errcode.New(errcode.InvalidSubscription, "subscription name %q contains '/' or a control character", name)
	}
	return nil
}

func invalid(s, why string) error {
	return &errcode.Error{Code: errcode.InvalidTopicName, Message: fmt.Sprintf("topic name %q: %s", s, why)}
}
