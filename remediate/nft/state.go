package nft

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// ruleset is our table as read back from the kernel.
type ruleset struct {
	table *nftables.Table // nil when missing
	chain *nftables.Chain // nil when missing
	// chainOK is whether the chain is a filter chain on the output hook.
	chainOK bool
	sets    map[string]*nftables.Set // our layout's sets that exist, by name
	badSets []string                 // sets of our names with another type or flags
	rules   []string                 // fingerprints, in chain order
	elems   map[string][]found       // by set name
	// total is the number of elements (intervals) in every set of the
	// table, ours or not: the table is deleted only when it is zero.
	total int
}

// read reads our table. A missing table is not an error.
func read(c *nftables.Conn, table string) (*ruleset, error) {
	rs := &ruleset{sets: map[string]*nftables.Set{}, elems: map[string][]found{}}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("nft: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table {
			rs.table = t
		}
	}
	if rs.table == nil {
		return rs, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("nft: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == table && ch.Name == chainName {
			rs.chain = ch
			rs.chainOK = ch.Type == nftables.ChainTypeFilter && ch.Hooknum != nil && *ch.Hooknum == *nftables.ChainHookOutput
		}
	}
	if rs.chain != nil {
		rules, err := c.GetRules(rs.table, rs.chain)
		if err != nil {
			return nil, fmt.Errorf("nft: list rules of inet %s %s: %w", table, chainName, err)
		}
		for _, r := range rules {
			rs.rules = append(rs.rules, fingerprint(r.Exprs))
		}
	}
	sets, err := c.GetSets(rs.table)
	if err != nil {
		return nil, fmt.Errorf("nft: list sets of inet %s: %w", table, err)
	}
	for _, set := range sets {
		set.Table = rs.table
		els, err := c.GetSetElements(set)
		if err != nil {
			return nil, fmt.Errorf("nft: list elements of %s: %w", set.Name, err)
		}
		spec, ours := specByName(set.Name)
		if !ours {
			for _, e := range els {
				if !e.IntervalEnd {
					rs.total++
				}
			}
			continue
		}
		if !sameSet(set, spec.set(rs.table)) {
			rs.badSets = append(rs.badSets, set.Name)
			continue
		}
		rs.sets[set.Name] = set
		rs.elems[set.Name] = decodeElements(spec, els)
		rs.total += len(rs.elems[set.Name])
	}
	return rs, nil
}

// specByName finds the layout's set called name.
func specByName(name string) (setSpec, bool) {
	for _, s := range layout {
		if s.name() == name {
			return s, true
		}
	}
	return setSpec{}, false
}

// sameSet reports whether a set read back is the one we would create.
func sameSet(got, want *nftables.Set) bool {
	return got.KeyType.Name == want.KeyType.Name && got.KeyType.Bytes == want.KeyType.Bytes &&
		got.Interval == want.Interval && got.HasTimeout == want.HasTimeout &&
		got.Concatenation == want.Concatenation && !got.IsMap
}

// wantRules is the chain's rules as fingerprints, in order.
func wantRules() []string {
	var out []string
	for _, s := range layout {
		out = append(out, fingerprint(s.ruleExprs(&nftables.Set{Name: s.name()})))
	}
	return out
}

// hasSets reports whether every set of the layout exists.
func (rs *ruleset) hasSets() bool {
	return len(rs.sets) == len(layout)
}

// hasRules reports whether the chain holds exactly the layout's rules.
func (rs *ruleset) hasRules() bool {
	return rs.chain != nil && slices.Equal(rs.rules, wantRules())
}

// hasRule reports whether the chain holds the rule of set s.
func (rs *ruleset) hasRule(s setSpec) bool {
	return slices.Contains(rs.rules, fingerprint(s.ruleExprs(&nftables.Set{Name: s.name()})))
}

// match is how an element of ours relates to the elements of a set.
type match struct {
	exact   *found // the same span
	covered *found // a wider element holds it
	overlap *found // an element shares keys without holding it
}

// lookup finds sp in set s.
func (rs *ruleset) lookup(s setSpec, sp span) match {
	var m match
	for i := range rs.elems[s.name()] {
		f := &rs.elems[s.name()][i]
		switch {
		case f.span == sp:
			m.exact = f
		case f.span.contains(sp):
			m.covered = f
		case f.span.overlaps(sp):
			m.overlap = f
		}
	}
	return m
}

// holds reports whether sp is in set s, exactly or inside a wider
// element.
func (m match) holds() bool { return m.exact != nil || m.covered != nil }

// record is what Change.Before and Change.After hold: the block, and
// what of our table was there.
type record struct {
	Table    string          `json:"table"`
	Target   netip.Prefix    `json:"target"`
	Protocol string          `json:"protocol"`
	Port     uint16          `json:"port"`
	DryRun   bool            `json:"dry_run,omitempty"`
	HasTable bool            `json:"has_table"`
	HasChain bool            `json:"has_chain"`
	HasSets  bool            `json:"has_sets"`  // every set of the layout
	HasRules bool            `json:"has_rules"` // exactly the layout's rules
	Elements []elementRecord `json:"elements"`
}

// elementRecord is one element of a block in one set.
type elementRecord struct {
	Set     string `json:"set"`
	Element string `json:"element"` // as nft writes it
	Present bool   `json:"present"` // exactly, or inside a wider element
	// Owner is the comment of the element found: the key of the action
	// that made it.
	Owner     string `json:"owner,omitempty"`
	CoveredBy string `json:"covered_by,omitempty"`
}

// recordOf describes b in rs.
func recordOf(rs *ruleset, table string, b block) record {
	r := record{
		Table: table, Target: b.prefix, Protocol: b.proto, Port: b.port,
		HasTable: rs.table != nil, HasChain: rs.chain != nil && rs.chainOK,
		HasSets: rs.hasSets(), HasRules: rs.hasRules(),
	}
	for _, s := range b.sets() {
		sp := b.spanOf(s)
		m := rs.lookup(s, sp)
		er := elementRecord{Set: s.name(), Element: sp.text(s), Present: m.holds()}
		switch {
		case m.exact != nil:
			er.Owner = m.exact.comment
		case m.covered != nil:
			er.Owner = m.covered.comment
			er.CoveredBy = m.covered.span.text(s)
		}
		r.Elements = append(r.Elements, er)
	}
	return r
}

// without is r as it was before the action with key made its elements.
func (r record) without(key string) record {
	r.Elements = slices.Clone(r.Elements)
	for i, e := range r.Elements {
		if e.Owner == key {
			r.Elements[i] = elementRecord{Set: e.Set, Element: e.Element}
		}
	}
	return r
}
