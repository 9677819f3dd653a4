package redisrepo

import (
	"fmt"
	"slices"
	"strconv"
)

// meta is the pointer to a user's current generation plus what readers
// need to know without reading the generation: when it was last renewed and
// how long each section is. Empty sections have no key at all, so the
// counts are what tells "empty" from "gone". loaded, when the generation
// was saved, is what the refresh cooldown measures the profile's age by.
type meta struct {
	gen       string
	renewed   int64 // unix ms
	loaded    int64 // unix ms; 0 in a meta written before it was recorded
	counts    [len(sections)]int
	interests int
}

// pairs is meta as HSET field/value pairs.
func (m meta) pairs() []string {
	p := make([]string, 0, 8+2*len(sections))
	p = append(p,
		metaGen, m.gen,
		metaRenewed, strconv.FormatInt(m.renewed, 10),
		metaLoaded, strconv.FormatInt(m.loaded, 10),
		metaInterests, strconv.Itoa(m.interests),
	)
	for i, s := range sections {
		p = append(p, s.list, strconv.Itoa(m.counts[i]))
	}
	return p
}

// metaFields are meta's fields in the order metaFrom reads them.
var metaFields = func() []string {
	f := []string{metaGen, metaRenewed, metaLoaded, metaInterests}
	for _, s := range sections {
		f = append(f, s.list)
	}
	return f
}()

// decodeMeta parses a meta hash; an empty hash is (meta{}, false, nil).
func decodeMeta(h map[string]string) (meta, bool, error) {
	if len(h) == 0 {
		return meta{}, false, nil
	}
	m, err := metaFrom(&decoder{m: h})
	return m, true, err
}

// metaFrom parses a meta hash that exists.
func metaFrom(d *decoder) (meta, error) {
	m := meta{
		gen:       d.str(metaGen),
		renewed:   d.int(metaRenewed),
		loaded:    d.optInt(metaLoaded),
		interests: int(d.int(metaInterests)),
	}
	for i, s := range sections {
		m.counts[i] = int(d.int(s.list))
	}
	if d.err != nil {
		return meta{}, d.err
	}
	if m.gen == "" || m.interests < 0 || m.loaded < 0 || slices.Min(m.counts[:]) < 0 {
		return meta{}, fmt.Errorf("%w: meta gen=%q interests=%d counts=%v", errCorrupt, m.gen, m.interests, m.counts)
	}
	return m, nil
}
