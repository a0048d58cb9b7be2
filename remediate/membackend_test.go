package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sync"
)

// memBackend is a Backend that keeps its "firewall" in memory: a map from
// rule name to rule. It behaves as the contract asks (idempotent Apply that
// reports the state before, Undo that restores it, Verify that reads back)
// and can fail on demand. It stands in for the real backends, which are
// tested on the wire in their own packages.
type memBackend struct {
	kinds []Kind

	mu    sync.Mutex
	rules map[string]string // what is in place: ours (by action key) and others'

	applies, made, dryRuns, verifies, undos int

	// failAfter makes the next Apply calls make the change and then fail,
	// as a process that dies after the API call would see it.
	failAfter int
	// failApply is returned by Apply before it changes anything.
	failApply error
	// extra are actions Plan adds as they are (a misbehaving backend).
	extra []Action
	// refuse are refusals Plan returns (a protected instance).
	refuse []Refusal
	// sawReconciling is set when a Verify came from Reconcile.
	sawReconciling bool
	// failUndo is returned by Undo before it changes anything.
	failUndo error
	// neverHolds makes Verify report every change missing.
	neverHolds bool
	// onApply and onVerify, when set, run at the start of a real Apply
	// and of Verify: the tests look at the store from there.
	onApply, onVerify func(Action)
}

func newMem(kinds ...Kind) *memBackend {
	return &memBackend{kinds: kinds, rules: map[string]string{"other-tool": "allow all"}}
}

func (m *memBackend) Kinds() []Kind { return m.kinds }

// memAction is the action memBackend plans for one target and kind.
func memAction(caseID string, k Kind, t netip.Prefix, proto string, port uint16, rule int32) Action {
	return Action{
		Key:     fmt.Sprintf("%s:%s:acl-1:%s:%s:%d", caseID, k, t, proto, port),
		Kind:    k,
		Reason:  "reported " + string(k),
		Account: "111122223333", Region: "eu-central-1", InstanceID: "i-1",
		Resource: "acl-1", Target: t, Protocol: proto, Port: port, RuleNumber: rule,
		Calls: []string{fmt.Sprintf("add %s deny %s %s port %d", k, proto, t, port)},
	}
}

func (m *memBackend) Plan(ctx context.Context, in Input) ([]Action, []Refusal, error) {
	var out []Action
	for _, k := range in.Policy.Kinds {
		for i, t := range in.Targets {
			out = append(out, memAction(in.CaseID, k, netip.PrefixFrom(t.IP, t.IP.BitLen()), t.Protocol, t.Port, 40+int32(i)))
		}
	}
	return append(out, m.extra...), m.refuse, nil
}

type memState struct {
	Present bool   `json:"present"`
	Rule    string `json:"rule,omitempty"`
}

func ruleOf(a Action) string { return fmt.Sprintf("deny %s %s port %d", a.Protocol, a.Target, a.Port) }

func (m *memBackend) Apply(ctx context.Context, a Action, dryRun bool) (Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	calls := []string{"add " + ruleOf(a)}
	if dryRun {
		m.dryRuns++
		return Change{Key: a.Key, Kind: a.Kind, Calls: calls}, nil
	}
	m.applies++
	if m.onApply != nil {
		m.onApply(a)
	}
	if m.failApply != nil {
		return Change{}, m.failApply
	}
	_, present := m.rules[a.Key]
	// A rule under our key is ours, so what Undo restores is its absence,
	// whether this call made it or an earlier one that died.
	before, _ := json.Marshal(memState{Present: false})
	if !present {
		m.rules[a.Key] = ruleOf(a)
		m.made++
	} else {
		calls = nil
	}
	if m.failAfter > 0 {
		m.failAfter--
		return Change{}, errors.New("connection reset after the call")
	}
	after, _ := json.Marshal(memState{Present: true, Rule: ruleOf(a)})
	return Change{Key: a.Key, Kind: a.Kind, Made: !present, Before: before, After: after, Calls: calls}, nil
}

func (m *memBackend) Verify(ctx context.Context, a Action) (Check, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.verifies++
	m.sawReconciling = m.sawReconciling || Reconciling(ctx)
	if m.onVerify != nil {
		m.onVerify(a)
	}
	if r, ok := m.rules[a.Key]; ok && !m.neverHolds {
		return Check{Key: a.Key, Holds: true, Detail: "rule " + r + " present"}, nil
	}
	return Check{Key: a.Key, Holds: false, Detail: "rule " + ruleOf(a) + " missing"}, nil
}

func (m *memBackend) Undo(ctx context.Context, c Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.undos++
	if m.failUndo != nil {
		return m.failUndo
	}
	var before memState
	if len(c.Before) > 0 {
		if err := json.Unmarshal(c.Before, &before); err != nil {
			return fmt.Errorf("undo %s: %w", c.Key, err)
		}
	}
	if !before.Present { // ours: found by key even when After was never recorded
		delete(m.rules, c.Key)
	}
	return nil
}

// forget drops a rule behind the engine's back, as a reboot flushing the
// ruleset would.
func (m *memBackend) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rules, key)
}

func (m *memBackend) snapshot() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.rules)
}
