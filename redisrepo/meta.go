package redisrepo

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/profilecache/profilecache/profile"
)

// meta points each section of a user's profile at the generation it is
// read from, plus what readers need to know without reading a generation:
// when it was last renewed, how long each list section is, and per section
// when it was loaded and how long that took. Empty sections have no key at
// all, so the counts are what tells "empty" from "gone".
//
// A whole-profile save points every section at one new generation and
// records it as gen (the Version); a section reload (issue 12) points only
// its section at a generation of its own. A meta written before sections
// had pointers has only gen: every section reads from it, and its load
// time is loaded.
type meta struct {
	gen       string // the last whole-profile save's generation
	gens      [profile.NumSections]string
	renewed   int64                      // unix ms
	loaded    int64                      // unix ms of the last whole save; 0 in a meta written before it was recorded
	loads     [profile.NumSections]int64 // unix ms
	took      [profile.NumSections]int64 // ms; 0: not measured
	counts    [len(sections)]int
	interests int
}

// Per-section meta field names: g:<section> its generation, l:<section>
// its load time, d:<section> its load duration.
var (
	metaGenOf   = sectionFields("g:")
	metaLoadOf  = sectionFields("l:")
	metaTookOf  = sectionFields("d:")
	metaCountOf = func() (f [profile.NumSections]string) {
		f[profile.SectionInterests] = metaInterests
		for i, s := range sections {
			f[listSection(i)] = s.list
		}
		return f
	}()
)

func sectionFields(prefix string) (f [profile.NumSections]string) {
	for s := range profile.NumSections {
		f[s] = prefix + s.String()
	}
	return f
}

// pairs is meta as HSET field/value pairs. Durations not measured (0) are
// left out, so that a whole save keeps the last section reload's.
func (m meta) pairs() []string {
	p := make([]string, 0, 8+2*len(sections)+6*int(profile.NumSections))
	p = append(p,
		metaGen, m.gen,
		metaRenewed, strconv.FormatInt(m.renewed, 10),
		metaLoaded, strconv.FormatInt(m.loaded, 10),
		metaInterests, strconv.Itoa(m.interests),
	)
	for i, s := range sections {
		p = append(p, s.list, strconv.Itoa(m.counts[i]))
	}
	for s := range profile.NumSections {
		p = append(p, metaGenOf[s], m.gens[s], metaLoadOf[s], strconv.FormatInt(m.loads[s], 10))
		if m.took[s] > 0 {
			p = append(p, metaTookOf[s], strconv.FormatInt(m.took[s], 10))
		}
	}
	return p
}

// metaFields are meta's fields in the order metaFrom reads them.
var metaFields = func() []string {
	f := []string{metaGen, metaRenewed, metaLoaded, metaInterests}
	for _, s := range sections {
		f = append(f, s.list)
	}
	for s := range profile.NumSections {
		f = append(f, metaGenOf[s], metaLoadOf[s], metaTookOf[s])
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
	for s := range profile.NumSections {
		m.gens[s] = m.gen
		if g, ok := d.lookup(metaGenOf[s]); ok {
			m.gens[s] = g
		}
		m.loads[s] = d.optInt(metaLoadOf[s])
		if m.loads[s] == 0 {
			m.loads[s] = m.loaded
		}
		m.took[s] = d.optInt(metaTookOf[s])
	}
	if d.err != nil {
		return meta{}, d.err
	}
	if m.gen == "" || slices.Contains(m.gens[:], "") || m.interests < 0 || m.loaded < 0 || slices.Min(m.counts[:]) < 0 {
		return meta{}, fmt.Errorf("%w: meta gen=%q gens=%q interests=%d counts=%v", errCorrupt, m.gen, m.gens, m.interests, m.counts)
	}
	return m, nil
}

// load is section sec's load time and duration as the Service sees them.
func (m meta) load(sec profile.Section) profile.SectionLoad {
	var l profile.SectionLoad
	if m.loads[sec] > 0 {
		l.At = time.UnixMilli(m.loads[sec])
	}
	l.Took = time.Duration(m.took[sec]) * time.Millisecond
	return l
}
