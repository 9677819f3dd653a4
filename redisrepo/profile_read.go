package redisrepo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// errMissing: a key the read expected (per meta) is not there. Like
// errCorrupt it sends the cached path to the consistent one.
var errMissing = errors.New("missing key")

// Read returns the parts q asks for, all from one generation.
//
// The fast path reads through the client-side cache: meta, then the
// requested parts, then the page items, each step one DoMultiCache. A hot
// page touches Redis not at all. A cached meta can be stale and point to a
// generation a save just deleted; then, and whenever anything is missing,
// Read falls back to readScript, which reads meta and the parts in one
// atomic step. Only if that finds a gap too is the profile not found: it
// expired or was evicted, and the Service reloads it.
func (s *ProfileStore) Read(ctx context.Context, userID uuid.UUID, q profile.Query) (profile.View, error) {
	pl, err := newPlan(q)
	if err != nil {
		return profile.View{}, fmt.Errorf("redisrepo: read profile: %w", err)
	}
	m, found, err := s.cachedMeta(ctx, userID)
	if err != nil {
		return profile.View{}, fmt.Errorf("redisrepo: read profile meta: %w", err)
	}
	var v profile.View
	if found {
		v, err = s.readCached(ctx, userID, m, pl)
	}
	if !found || errors.Is(err, errMissing) || errors.Is(err, errCorrupt) {
		v, m, err = s.readAtomic(ctx, userID, pl)
	}
	if err != nil {
		return profile.View{}, fmt.Errorf("redisrepo: read profile: %w", err)
	}
	s.maybeRenew(ctx, userID, m)
	return v, nil
}

// plan is what one Read needs.
type plan struct {
	basic     bool
	interests bool
	loads     bool
	pages     [len(sections)]*profile.Page
}

func newPlan(q profile.Query) (plan, error) {
	pl := plan{basic: q.Basic, interests: q.Interests, loads: q.Loads,
		pages: [len(sections)]*profile.Page{q.Orders, q.Invoices, q.Inquiries}}
	for i, p := range pl.pages {
		if p == nil {
			continue
		}
		if err := p.Validate(); err != nil {
			return plan{}, fmt.Errorf("%s offset=%d limit=%d: %w", sections[i].list, p.Offset, p.Limit, err)
		}
	}
	return pl, nil
}

// want is how many ids section i must yield on its page, per m's count.
func (pl plan) want(m meta, i int) int {
	p := pl.pages[i]
	if p == nil {
		return 0
	}
	return max(0, min(p.Limit, m.counts[i]-p.Offset))
}

// raw is what Redis returned for a plan, before decoding.
type raw struct {
	basic     hash
	interests []string
	ids       [len(sections)][]string
	items     [len(sections)][]hash
}

// hash is one stored hash as read: the reply of HMGET fields (the cached
// path), or a map (the Lua fallback's HGETALL).
type hash struct {
	fields []string
	vals   []rueidis.RedisMessage
	m      map[string]string
}

// hmgetHash reads the reply of HMGET fields.
func hmgetHash(fields []string, r rueidis.RedisResult) (hash, error) {
	vals, err := r.ToArray()
	return hash{fields: fields, vals: vals}, err
}

// reset points d at h, or reports false when the hash does not exist.
func (h hash) reset(d *decoder) bool {
	if h.fields != nil {
		return d.resetHMGET(h.fields, h.vals)
	}
	*d = decoder{m: h.m}
	return len(h.m) > 0
}

// assemble decodes r into a View, or reports errMissing or errCorrupt.
func (pl plan) assemble(uid uuid.UUID, m meta, r raw) (profile.View, error) {
	var v profile.View
	if pl.loads {
		pl.fillLoads(&v, m)
	}
	if pl.basic {
		var d decoder
		if !r.basic.reset(&d) {
			return v, fmt.Errorf("%w: basic", errMissing)
		}
		b, err := basicFrom(&d)
		if err != nil {
			return v, fmt.Errorf("basic: %w", err)
		}
		if b.ID != uid {
			return v, fmt.Errorf("%w: basic of user %s", errCorrupt, b.ID)
		}
		v.Basic = b
	}
	if pl.interests {
		if len(r.interests) != m.interests {
			return v, fmt.Errorf("%w: %d of %d interests", errMissing, len(r.interests), m.interests)
		}
		v.Interests = make([]string, 0, len(r.interests)) // [] rather than null for JSON
		v.Interests = append(v.Interests, r.interests...)
		slices.Sort(v.Interests)
	}
	var err error
	if v.Orders, err = assembleSection(pl, m, r, 0, orderFrom); err != nil {
		return v, err
	}
	if v.Invoices, err = assembleSection(pl, m, r, 1, invoiceFrom); err != nil {
		return v, err
	}
	if v.Inquiries, err = assembleSection(pl, m, r, 2, inquiryFrom); err != nil {
		return v, err
	}
	return v, nil
}

// fillLoads sets v.Loads for the sections the plan reads.
func (pl plan) fillLoads(v *profile.View, m meta) {
	if pl.basic {
		v.Loads[profile.SectionBasic] = m.load(profile.SectionBasic)
	}
	if pl.interests {
		v.Loads[profile.SectionInterests] = m.load(profile.SectionInterests)
	}
	for i, p := range pl.pages {
		if p != nil {
			v.Loads[listSection(i)] = m.load(listSection(i))
		}
	}
}

func assembleSection[T any](pl plan, m meta, r raw, i int, decode func(id string, d *decoder) (T, error)) (profile.Slice[T], error) {
	if pl.pages[i] == nil {
		return profile.Slice[T]{}, nil
	}
	sec := sections[i]
	hashes, ids := r.items[i], r.ids[i]
	if want := pl.want(m, i); len(hashes) != want || len(ids) != want {
		return profile.Slice[T]{}, fmt.Errorf("%w: %d of %d %s", errMissing, len(hashes), want, sec.list)
	}
	out := profile.Slice[T]{Items: make([]T, 0, len(hashes)), Total: m.counts[i]}
	var d decoder // one for the page: a decoder per item was a tenth of its allocations
	for j, h := range hashes {
		if !h.reset(&d) {
			return profile.Slice[T]{}, fmt.Errorf("%w: %s item", errMissing, sec.item)
		}
		it, err := decode(ids[j], &d)
		if err != nil {
			return profile.Slice[T]{}, fmt.Errorf("%s: %w", sec.item, err)
		}
		out.Items = append(out.Items, it)
	}
	return out, nil
}

// itemFields are the fields of section i's item hashes.
var itemFields = [len(sections)][]string{orderFields, invoiceFields, inquiryFields}

func (s *ProfileStore) cachedMeta(ctx context.Context, uid uuid.UUID) (meta, bool, error) {
	r := s.client.DoCache(ctx, s.client.B().Hmget().Key(s.keys.meta(uid)).Field(metaFields...).Cache(), s.cacheTTL)
	h, err := hmgetHash(metaFields, r)
	if err != nil {
		return meta{}, false, err
	}
	var d decoder
	if !h.reset(&d) {
		return meta{}, false, nil
	}
	m, err := metaFrom(&d)
	if err != nil {
		// Garbage, or a stale cache entry: let the atomic read decide.
		return meta{}, false, nil
	}
	return m, true, nil
}

// readCached reads the generations m points at through the client-side
// cache: the heads (basic, interests, the id pages), then the page items.
func (s *ProfileStore) readCached(ctx context.Context, uid uuid.UUID, m meta, pl plan) (profile.View, error) {
	cmds, lists := s.headCmds(uid, m, pl)
	var resp []rueidis.RedisResult
	if len(cmds) == 1 { // the common /api/me case: DoCache is cheaper
		resp = []rueidis.RedisResult{s.client.DoCache(ctx, cmds[0].Cmd, cmds[0].TTL)}
	} else {
		resp = s.client.DoMultiCache(ctx, cmds...)
	}
	var r raw
	nItems, err := pl.decodeHeads(m, resp, &r)
	if err != nil {
		return profile.View{}, err
	}
	if nItems > 0 {
		if err := s.readCachedItems(ctx, &lists, nItems, &r); err != nil {
			return profile.View{}, err
		}
	}
	return pl.assemble(uid, m, r)
}

// headCmds are the cached reads of basic, interests and the id pages the
// plan wants, and per list section read, its generation.
func (s *ProfileStore) headCmds(uid uuid.UUID, m meta, pl plan) ([]rueidis.CacheableTTL, [len(sections)]genKeys) {
	b := s.client.B()
	var lists [len(sections)]genKeys
	cmds := make([]rueidis.CacheableTTL, 0, 2+len(sections))
	if pl.basic {
		g := s.keys.gen(uid, m.gens[profile.SectionBasic])
		cmds = append(cmds, rueidis.CT(b.Hmget().Key(g.basic()).Field(basicFields...).Cache(), s.cacheTTL))
	}
	if pl.interests && m.interests > 0 {
		g := s.keys.gen(uid, m.gens[profile.SectionInterests])
		cmds = append(cmds, rueidis.CT(b.Smembers().Key(g.interests()).Cache(), s.cacheTTL))
	}
	for i, p := range pl.pages {
		if n := pl.want(m, i); n > 0 {
			g := s.keys.gen(uid, m.gens[listSection(i)])
			lists[i] = g
			cmds = append(cmds, rueidis.CT(b.Lrange().Key(g.list(sections[i])).
				Start(int64(p.Offset)).Stop(int64(p.Offset+n-1)).Cache(), s.cacheTTL))
		}
	}
	return cmds, lists
}

// decodeHeads fills r from the replies to headCmds, in their order, and
// counts the page items to read.
func (pl plan) decodeHeads(m meta, resp []rueidis.RedisResult, r *raw) (nItems int, err error) {
	next := func() rueidis.RedisResult { r := resp[0]; resp = resp[1:]; return r }
	if pl.basic {
		if r.basic, err = hmgetHash(basicFields, next()); err != nil {
			return 0, fmt.Errorf("basic: %w", err)
		}
	}
	if pl.interests && m.interests > 0 {
		if r.interests, err = next().AsStrSlice(); err != nil {
			return 0, fmt.Errorf("interests: %w", err)
		}
	}
	for i := range pl.pages {
		if pl.want(m, i) > 0 {
			if r.ids[i], err = next().AsStrSlice(); err != nil {
				return 0, fmt.Errorf("%s: %w", sections[i].list, err)
			}
			nItems += len(r.ids[i])
		}
	}
	return nItems, nil
}

// readCachedItems reads the item hashes of the ids in r, in one round trip.
func (s *ProfileStore) readCachedItems(ctx context.Context, lists *[len(sections)]genKeys, nItems int, r *raw) error {
	b := s.client.B()
	cmds := make([]rueidis.CacheableTTL, 0, nItems)
	for i, sec := range sections {
		for _, id := range r.ids[i] {
			cmds = append(cmds, rueidis.CT(b.Hmget().Key(lists[i].item(sec, id)).Field(itemFields[i]...).Cache(), s.cacheTTL))
		}
	}
	resp := s.client.DoMultiCache(ctx, cmds...)
	var err error
	for i, sec := range sections {
		r.items[i] = make([]hash, len(r.ids[i]))
		for j := range r.ids[i] {
			if r.items[i][j], err = hmgetHash(itemFields[i], resp[0]); err != nil {
				return fmt.Errorf("%s: %w", sec.item, err)
			}
			resp = resp[1:]
		}
	}
	return nil
}

// readAtomic reads meta and the plan's parts with readScript. Anything
// missing now is really missing: the error wraps profile.ErrNotFound.
func (s *ProfileStore) readAtomic(ctx context.Context, uid uuid.UUID, pl plan) (profile.View, meta, error) {
	arr, err := readScript.Exec(ctx, s.client, []string{s.keys.meta(uid)}, pl.scriptArgs(s.keys.user(uid))).ToArray()
	if err != nil {
		return profile.View{}, meta{}, err
	}
	if len(arr) != 3+len(sections) {
		return profile.View{}, meta{}, fmt.Errorf("profile of %s: %w", uid, profile.ErrNotFound)
	}
	notFound := func(err error) (profile.View, meta, error) {
		return profile.View{}, meta{}, fmt.Errorf("profile of %s: %w (%w)", uid, profile.ErrNotFound, err)
	}
	h, err := arr[0].AsStrMap()
	if err != nil {
		return profile.View{}, meta{}, fmt.Errorf("meta: %w", err)
	}
	m, _, err := decodeMeta(h)
	if err != nil {
		return notFound(err)
	}
	var r raw
	if err := r.decodeScript(arr); err != nil {
		return profile.View{}, meta{}, err
	}
	v, err := pl.assemble(uid, m, r)
	if err != nil {
		return notFound(err)
	}
	return v, m, nil
}

// scriptArgs are readScript's arguments: the user key, what to read and
// each list section's range ("" "" for none).
func (pl plan) scriptArgs(userKey string) []string {
	args := make([]string, 0, 3+2*len(sections))
	args = append(args, userKey, flag(pl.basic), flag(pl.interests))
	for _, p := range pl.pages {
		if p == nil {
			args = append(args, "", "")
			continue
		}
		stop := math.MaxInt // an offset near MaxInt must not overflow
		if p.Offset <= math.MaxInt-p.Limit {
			stop = p.Offset + p.Limit - 1
		}
		args = append(args, strconv.Itoa(p.Offset), strconv.Itoa(stop))
	}
	return args
}

// decodeScript fills r from readScript's reply after meta: basic,
// interests, then {ids, item hashes} per list section.
func (r *raw) decodeScript(arr []rueidis.RedisMessage) error {
	var err error
	if r.basic.m, err = arr[1].AsStrMap(); err != nil {
		return fmt.Errorf("basic: %w", err)
	}
	if r.interests, err = arr[2].AsStrSlice(); err != nil {
		return fmt.Errorf("interests: %w", err)
	}
	for i, sec := range sections {
		pair, err := arr[3+i].ToArray()
		if err == nil && len(pair) != 2 {
			err = fmt.Errorf("%d elements, want 2", len(pair))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sec.list, err)
		}
		if r.ids[i], err = pair[0].AsStrSlice(); err != nil {
			return fmt.Errorf("%s: %w", sec.list, err)
		}
		items, err := pair[1].ToArray()
		if err != nil {
			return fmt.Errorf("%s: %w", sec.list, err)
		}
		r.items[i] = make([]hash, len(items))
		for j := range items {
			if r.items[i][j].m, err = items[j].AsStrMap(); err != nil {
				return fmt.Errorf("%s: %w", sec.item, err)
			}
		}
	}
	return nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
