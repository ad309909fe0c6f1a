package serving

import (
	"testing"

	"github.com/strata-mq/strata/serving/servingpb"
)

// TestEveryBrokerCallHasAnAuthorizationRule: a call without a rule is for
// superusers only, which would silently lock roles out of a new call that
// ought to be theirs; so every call of the Broker service is named here,
// and a rule for a call that no longer exists is caught too.
func TestEveryBrokerCallHasAnAuthorizationRule(t *testing.T) {
	calls := map[string]bool{}
	for _, m := range servingpb.Broker_ServiceDesc.Methods {
		calls[m.MethodName] = true
		if _, ok := unaryRules[m.MethodName]; !ok {
			t.Errorf("unary call %s has no authorization rule", m.MethodName)
		}
	}
	for _, s := range servingpb.Broker_ServiceDesc.Streams {
		calls[s.StreamName] = true
		if !streamRules[s.StreamName] {
			t.Errorf("streaming call %s has no authorization rule", s.StreamName)
		}
	}
	for name := range unaryRules {
		if !calls[name] {
			t.Errorf("rule for %s, which the service does not have", name)
		}
	}
	for name := range streamRules {
		if !calls[name] {
			t.Errorf("rule for %s, which the service does not have", name)
		}
	}
}
