package redisrepo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// One Redis serves every user, and it runs one command (or script, or
// MULTI/EXEC) at a time: whatever one call costs, every other user waits
// for. So no call that the profile store sends grows with the size of a
// profile (issue 11). These bounds hold for every call:
//
//   - a write batch (writeScript) holds at most batchKeys keys, batchVals
//     values (hash fields and values, list ids, set members) and, unless
//     one value alone is larger, batchBytes;
//   - an UNLINK, and a PEXPIRE script, holds at most batchKeys keys;
//   - an RPUSH, SADD or LRANGE carries at most chunkElems elements.
//
// Measured on a shared 2-core machine (docs/scale.md): Redis spends about
// 4 µs per key of a write batch (an order's HSET and PEXPIRE, through Lua),
// so a batch of 64 item hashes takes about 0.3 ms (p90 0.4 ms), well under
// the 1 ms from which its latency monitor reports a stall; batches of 128
// took 0.65 ms and crossed 1 ms whenever the machine was busy. Carol's
// 10,000 orders take 160 batches, and her save is no slower for it (about
// 75 ms of Redis CPU, as one MULTI/EXEC took).
const (
	batchKeys  = 64
	batchVals  = 1024
	batchBytes = 256 << 10
	chunkElems = 128
)

// cleanupTimeout bounds work that runs after the caller's part is done or
// has failed: deleting a replaced generation, or what a failed save wrote.
const cleanupTimeout = 5 * time.Second

// genWrite is one command of a new generation: a whole hash, or one chunk
// of a list or a set.
type genWrite struct {
	key  string
	kind string // writeHash, writeList or writeSet
	vals []string
}

// Kinds of genWrite, as writeScript reads them.
const (
	writeHash = "h"
	writeList = "l"
	writeSet  = "s"
)

// genWrites lists every write of p's generation g: basic, interests, then
// per section the item hashes and the id list, the list in chunks of
// chunkElems.
func genWrites(g genKeys, p *profile.Profile, interests []string) []genWrite {
	n := 2 + len(p.Orders) + len(p.Invoices) + len(p.Inquiries) + len(interests)/chunkElems + 3
	w := make([]genWrite, 0, n+(len(p.Orders)+len(p.Invoices)+len(p.Inquiries))/chunkElems)
	for sec := range profile.NumSections {
		w = appendSectionWrites(w, g, sec, p, interests)
	}
	return w
}

// appendSectionWrites appends the writes of p's section sec to w.
func appendSectionWrites(w []genWrite, g genKeys, sec profile.Section, p *profile.Profile, interests []string) []genWrite {
	switch sec {
	case profile.SectionBasic:
		return append(w, genWrite{g.basic(), writeHash, encodeBasic(p.Basic)})
	case profile.SectionInterests:
		// Empty sections get no key: Redis has no empty sets or lists.
		return appendChunks(w, g.interests(), writeSet, interests)
	case profile.SectionOrders:
		return appendSection(w, g, secOrders, p.Orders, func(o profile.Order) string { return o.ID }, encodeOrder)
	case profile.SectionInvoices:
		return appendSection(w, g, secInvoices, p.Invoices, func(i profile.Invoice) string { return i.ID }, encodeInvoice)
	case profile.SectionInquiries:
		return appendSection(w, g, secInquiries, p.Inquiries, func(q profile.Inquiry) string { return q.ID }, encodeInquiry)
	}
	return w
}

func appendSection[T any](w []genWrite, g genKeys, sec section, items []T, id func(T) string, encode func(T) []string) []genWrite {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = id(it)
		w = append(w, genWrite{g.item(sec, ids[i]), writeHash, encode(it)})
	}
	return appendChunks(w, g.list(sec), writeList, ids)
}

func appendChunks(w []genWrite, key, kind string, vals []string) []genWrite {
	for i := 0; i < len(vals); i += chunkElems {
		w = append(w, genWrite{key, kind, vals[i:min(i+chunkElems, len(vals))]})
	}
	return w
}

// batches splits writes into write batches within batchKeys writes,
// batchVals values and, unless one write alone is larger, batchBytes.
func batches(writes []genWrite) [][]genWrite {
	var out [][]genWrite
	start, vals, size := 0, 0, 0
	for i, w := range writes {
		n := len(w.key)
		for _, v := range w.vals {
			n += len(v)
		}
		if i > start && (i-start == batchKeys || vals+len(w.vals) > batchVals || size+n > batchBytes) {
			out = append(out, writes[start:i])
			start, vals, size = i, 0, 0
		}
		vals += len(w.vals)
		size += n
	}
	if start < len(writes) {
		out = append(out, writes[start:])
	}
	return out
}

// writeBatch writes one batch, every key with its TTL, unless the user's
// fence moved (then nothing, and an error wrapping profile.ErrFenced).
func writeBatch(ctx context.Context, client rueidis.Client, fenceKey string, fence profile.Fence, ttl string, batch []genWrite) error {
	keys := make([]string, 0, 1+len(batch))
	keys = append(keys, fenceKey)
	args := make([]string, 0, 2+4*len(batch))
	args = append(args, string(fence), ttl)
	for _, w := range batch {
		keys = append(keys, w.key)
		args = append(args, w.kind, strconv.Itoa(len(w.vals)))
		args = append(args, w.vals...)
	}
	return fencedErr(writeScript.Exec(ctx, client, keys, args).Error())
}

// unlinkKeys deletes keys, batchKeys per call. Keys are deduplicated in
// order: a list written in chunks appears once per chunk.
func unlinkKeys(ctx context.Context, client rueidis.Client, keys []string) error {
	seen := make(map[string]bool, len(keys))
	batch := make([]string, 0, batchKeys)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := client.Do(ctx, client.B().Unlink().Key(batch...).Build()).Error()
		batch = batch[:0]
		return err
	}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if batch = append(batch, k); len(batch) == batchKeys {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// walkGen applies op to every key of generation gen that belongs to the
// sections in ps, at most batchKeys keys per command: the item keys, read
// from the id lists chunkElems per list and round trip, and in the last
// command the lists themselves with basic and interests. Last, so that op may delete what it is given: a walk
// that stops halfway, and a second walk of the same generation, still find
// every item that is left. Each round trip carries the ops on the items
// read in the previous one and the next LRANGEs, so a small generation
// takes two round trips and carol's 10,000 orders about 80.
//
// A list that is gone yields no items: its items are gone too (they are
// deleted first) or expire by their TTL.
func walkGen(ctx context.Context, client rueidis.Client, keys keyspace, uid uuid.UUID, gen string, ps parts, op func([]string) rueidis.Completed) error {
	g := keys.gen(uid, gen)
	var pending []string           // item keys read, not yet given to op
	var ready rueidis.Commands     // ops to send with the next round trip
	next := [len(sections)]int64{} // the next chunk's start per list; -1 once read to the end
	for i := range sections {
		if !ps.has(listSection(i)) {
			next[i] = -1
		}
	}
	for {
		cmds := ready
		var secs []int
		for i, sec := range sections {
			if next[i] >= 0 {
				cmds = append(cmds, client.B().Lrange().Key(g.list(sec)).Start(next[i]).Stop(next[i]+chunkElems-1).Build())
				secs = append(secs, i)
			}
		}
		if len(cmds) == 0 {
			break
		}
		rs := client.DoMulti(ctx, cmds...)
		if err := firstErr(rs[:len(ready)]); err != nil {
			return err
		}
		for j, r := range rs[len(ready):] {
			sec := sections[secs[j]]
			ids, err := r.AsStrSlice()
			if err != nil {
				return fmt.Errorf("%s: %w", sec.list, err)
			}
			for _, id := range ids {
				pending = append(pending, g.item(sec, id))
			}
			if len(ids) < chunkElems {
				next[secs[j]] = -1
			} else {
				next[secs[j]] += chunkElems
			}
		}
		ready = nil
		for len(pending) >= batchKeys {
			ready = append(ready, op(pending[:batchKeys]))
			pending = pending[batchKeys:]
		}
	}
	fixed := g.fixedKeys(ps)
	if len(pending)+len(fixed) > batchKeys {
		ready = append(ready, op(pending))
		pending = nil
	}
	// In order on one connection: the items before the lists.
	ready = append(ready, op(append(pending, fixed...)))
	return firstErr(client.DoMulti(ctx, ready...))
}

// fixedKeys are the keys of the sections in ps that are not items: basic,
// interests and the id lists.
func (g genKeys) fixedKeys(ps parts) []string {
	var fixed []string
	if ps.has(profile.SectionBasic) {
		fixed = append(fixed, g.basic())
	}
	if ps.has(profile.SectionInterests) {
		fixed = append(fixed, g.interests())
	}
	for i, sec := range sections {
		if ps.has(listSection(i)) {
			fixed = append(fixed, g.list(sec))
		}
	}
	return fixed
}

// firstErr is the first error among rs.
func firstErr(rs []rueidis.RedisResult) error {
	for _, r := range rs {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// dropGens deletes every section of each generation in gens, which
// nothing points at any more.
func dropGens(ctx context.Context, client rueidis.Client, keys keyspace, uid uuid.UUID, gens []string) error {
	for _, g := range gens {
		if err := dropGen(ctx, client, keys, uid, g, allParts); err != nil {
			return fmt.Errorf("generation %s: %w", g, err)
		}
	}
	return nil
}

// dropGen deletes the sections ps of generation gen in bounded steps. Call
// it only once meta no longer points at them: readers that still follow an
// older meta from their client-side cache find keys missing and read meta
// again.
func dropGen(ctx context.Context, client rueidis.Client, keys keyspace, uid uuid.UUID, gen string, ps parts) error {
	return walkGen(ctx, client, keys, uid, gen, ps, func(ks []string) rueidis.Completed {
		return client.B().Unlink().Key(ks...).Build()
	})
}

// pexpireGen sets the TTL of every key of generation gen that still
// exists, batchKeys keys per script call. PEXPIRE never creates a key, so
// a generation deleted meanwhile stays deleted.
func pexpireGen(ctx context.Context, client rueidis.Client, keys keyspace, uid uuid.UUID, gen string, ttl int64) error {
	ms := strconv.FormatInt(ttl, 10)
	return walkGen(ctx, client, keys, uid, gen, allParts, func(ks []string) rueidis.Completed {
		// Plain EVAL: in a pipeline there is no falling back from a
		// NOSCRIPT, and Redis compiles the short body once.
		return client.B().Eval().Script(pexpireScript).Numkeys(int64(len(ks))).Key(ks...).Arg(ms).Build()
	})
}

// isFenced reports whether err is a fenced write.
func isFenced(err error) bool { return errors.Is(err, profile.ErrFenced) }
