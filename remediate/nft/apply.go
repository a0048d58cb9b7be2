package nft

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/nftables"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// ops is what one Apply changes, all in one batch.
type ops struct {
	table, chain bool      // create them
	sets         []setSpec // create them
	rules        bool      // (re)write the layout's rules
	flushChain   bool      // the chain exists with other rules: empty it first
	elems        []setSpec // add the block's element to these sets
}

func (o ops) empty() bool {
	return !o.table && !o.chain && len(o.sets) == 0 && !o.rules && len(o.elems) == 0
}

// diff is what must change in rs for b to hold. Only parts that are
// missing are created. The rules are rewritten as a whole when they
// differ from the layout, which leaves the same rules whoever wrote
// them; a process adding a missing rule would duplicate one.
func diff(rs *ruleset, b block) (ops, error) {
	var o ops
	if len(rs.badSets) > 0 {
		return o, fmt.Errorf("sets %v in inet %s have another type or flags than ours", rs.badSets, rs.table.Name)
	}
	if rs.chain != nil && !rs.chainOK {
		return o, fmt.Errorf("chain %s in inet %s is not a filter chain on the output hook", chainName, rs.table.Name)
	}
	o.table = rs.table == nil
	o.chain = rs.chain == nil
	for _, s := range layout {
		if rs.sets[s.name()] == nil {
			o.sets = append(o.sets, s)
		}
	}
	o.rules = !rs.hasRules()
	o.flushChain = o.rules && len(rs.rules) > 0
	for _, s := range b.sets() {
		sp := b.spanOf(s)
		m := rs.lookup(s, sp)
		switch {
		case m.holds():
		case m.overlap != nil:
			return o, fmt.Errorf("%s overlaps %s in set %s without holding it", sp.text(s), m.overlap.span.text(s), s.name())
		default:
			o.elems = append(o.elems, s)
		}
	}
	return o, nil
}

// calls are the nft commands for o, in batch order.
func (o ops) calls(table string, b block, ttl time.Duration, key string) []string {
	var out []string
	if o.table {
		out = append(out, tableText(table))
	}
	if o.chain {
		out = append(out, chainText(table))
	}
	for _, s := range o.sets {
		out = append(out, s.setText(table))
	}
	if o.flushChain {
		out = append(out, fmt.Sprintf("flush chain inet %s %s", table, chainName))
	}
	if o.rules {
		for _, s := range layout {
			out = append(out, fmt.Sprintf("add rule inet %s %s %s", table, chainName, s.ruleText()))
		}
	}
	for _, s := range o.elems {
		out = append(out, elementText(table, s, b.spanOf(s), ttl, key))
	}
	return out
}

// batchMu guards building batches: the library numbers new sets from a
// package variable, unguarded between connections.
var batchMu sync.Mutex

// send makes o in one batch: the kernel applies all of it or none.
func (o ops) send(c *nftables.Conn, rs *ruleset, table string, b block, ttl time.Duration, key string) error {
	batchMu.Lock()
	defer batchMu.Unlock()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: table}
	if o.table {
		c.AddTable(t)
	}
	ch := chainSpec(t)
	if o.chain {
		c.AddChain(ch)
	}
	sets := map[string]*nftables.Set{}
	for name, s := range rs.sets {
		sets[name] = s
	}
	for _, s := range o.sets {
		set := s.set(t)
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("nft: add set %s: %w", s.name(), err)
		}
		sets[s.name()] = set
	}
	if o.flushChain {
		c.FlushChain(ch)
	}
	if o.rules {
		for _, s := range layout {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: s.ruleExprs(sets[s.name()])})
		}
	}
	for _, s := range o.elems {
		if err := c.SetAddElements(sets[s.name()], b.spanOf(s).elements(s, ttl, key)); err != nil {
			return fmt.Errorf("nft: add element to %s: %w", s.name(), err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: apply batch in inet %s: %w", table, err)
	}
	return nil
}

// Apply adds a's element, creating whatever of the table, chain, sets
// and rules is missing, in one batch. When the block holds already it
// changes nothing and returns Made false. With dryRun it reads, changes
// nothing and returns the calls it would make. Before and After record
// what of the table existed and each element's owner; Before leaves out
// the elements carrying a's key, which an earlier run of a made.
func (b *Backend) Apply(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	ch := remediate.Change{Key: a.Key, Kind: remediate.KindNftables}
	if a.Kind != remediate.KindNftables {
		return ch, fmt.Errorf("nft: apply %s: kind %q is not %q", a.Key, a.Kind, remediate.KindNftables)
	}
	blk, err := blockOf(a.Target, a.Protocol, a.Port)
	if err != nil {
		return ch, fmt.Errorf("nft: apply %s: refused: %w", a.Key, err)
	}
	if len(a.Key) > maxComment {
		return ch, fmt.Errorf("nft: apply %s: the key is longer than an nft comment (%d bytes)", a.Key, maxComment)
	}
	ttl, err := ttlOf(a)
	if err != nil {
		return ch, err
	}
	if err := ctx.Err(); err != nil {
		return ch, fmt.Errorf("nft: apply %s: %w", a.Key, err)
	}
	if !dryRun {
		unlock, err := b.lock.acquire(ctx)
		if err != nil {
			return ch, err
		}
		defer unlock()
	}
	c, err := b.conn()
	if err != nil {
		return ch, err
	}
	rs, err := read(c, b.table)
	if err != nil {
		return ch, err
	}
	o, err := diff(rs, blk)
	if err != nil {
		return ch, fmt.Errorf("nft: apply %s: %w", a.Key, err)
	}
	// Before is the state without this action's change: an element
	// carrying its key is from an earlier run of it (a crash before the
	// engine recorded it), not something to restore.
	before := recordOf(rs, b.table, blk).without(a.Key)
	ch.Calls = o.calls(b.table, blk, ttl, a.Key)
	ch.At = time.Now().UTC()
	after := recordOf(rs, b.table, blk)
	if dryRun {
		before.DryRun, after.DryRun = true, true
	} else if !o.empty() {
		if err := o.send(c, rs, b.table, blk, ttl, a.Key); err != nil {
			return ch, err
		}
		ch.Made = true
		if rs, err = read(c, b.table); err != nil {
			return ch, err
		}
		after = recordOf(rs, b.table, blk)
	}
	if ch.Before, err = json.Marshal(before); err != nil {
		return ch, fmt.Errorf("nft: encode state: %w", err)
	}
	if ch.After, err = json.Marshal(after); err != nil {
		return ch, fmt.Errorf("nft: encode state: %w", err)
	}
	return ch, nil
}

// Undo removes every element of our table whose comment is c's key: the
// elements c's action added, found by name and content, never by a rule
// handle. So it works when c.Before and c.After are empty (the process
// stopped before recording the change), after a re-apply (a reboot), and
// it leaves an element another action added. When no element is left in
// the table, the table goes in the same batch. What is gone already, and
// a dry run, are no error.
func (b *Backend) Undo(ctx context.Context, c remediate.Change) error {
	if c.Kind != remediate.KindNftables {
		return fmt.Errorf("nft: undo %s: kind %q is not %q", c.Key, c.Kind, remediate.KindNftables)
	}
	if c.Key == "" {
		return fmt.Errorf("nft: undo: empty key")
	}
	table := b.table
	for _, raw := range []json.RawMessage{c.After, c.Before} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var rec record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("nft: undo %s: decode state: %w", c.Key, err)
		}
		if rec.DryRun {
			return nil
		}
		if rec.Table != "" {
			table = rec.Table // where it was made, should the config change
		}
		break
	}
	if !tableName.MatchString(table) {
		return fmt.Errorf("nft: undo %s: table name %q", c.Key, table)
	}
	unlock, err := b.lock.acquire(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	conn, err := b.conn()
	if err != nil {
		return err
	}
	rs, err := read(conn, table)
	if err != nil {
		return err
	}
	if rs.table == nil {
		return nil
	}
	left := rs.total
	for _, s := range layout {
		for _, f := range rs.elems[s.name()] {
			if f.comment != c.Key {
				continue
			}
			left--
			if err := conn.SetDeleteElements(rs.sets[s.name()], f.span.elements(s, 0, "")); err != nil {
				return fmt.Errorf("nft: undo %s: delete %s from %s: %w", c.Key, f.span.text(s), s.name(), err)
			}
		}
	}
	if left == 0 {
		conn.DelTable(rs.table)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nft: undo %s in inet %s: %w", c.Key, table, err)
	}
	return nil
}
