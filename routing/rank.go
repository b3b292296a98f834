package routing

import (
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	geo "github.com/kellydunn/golang-geo"
	vakt "github.com/vakt/vakt"
)

// earthRadiusM is golang-geo's radius, so the estimate and the confirmation agree.
const (
	earthRadiusM = geo.EARTH_RADIUS * 1000
	degToRad     = math.Pi / 180
)

// entry is one candidate while ranking: the quantised distance in the high 32 bits
// and the index into Env.People in the low 32, so ordering moves 8 bytes per person
// and radix-sorts as integers. Quantising to centimetres makes distances equal to
// the centimetre ties, which go to the tie-breaks (positions are good to metres at
// best), and keeps keys of distances under 655 m within two bytes, so on a site the
// sort makes two passes.
type entry uint64

// The top bit of a key says the person has no phone connected (Person.Offline):
// they rank after everyone who would see the offer at once, nearest first among
// themselves, so an offline phone never costs a resident offer_confirm while a
// connected colleague waits.
const (
	keyScale   = 100            // key units per metre
	offlineBit = 1 << 31        // set for people without a connected phone
	unknownKey = offlineBit - 1 // sorts unknown positions after every known one
	maxKnown   = unknownKey - 1 // 21,474 km: beyond any distance between two people on a site
)

// unknown reports whether key k is for a person whose position is unknown.
func unknown(k uint32) bool { return k|offlineBit == math.MaxUint32 }

func pack(key uint32, idx int) entry { return entry(uint64(key)<<32 | uint64(uint32(idx))) }
func (e entry) key() uint32          { return uint32(e >> 32) }
func (e entry) idx() int             { return int(uint32(e)) }

// quantise rounds to the nearest key, so distances that are equal up to float
// noise (a whole number of metres computed two ways) share a key.
func quantise(d float64) uint32 {
	if q := d*keyScale + 0.5; q < maxKnown {
		return uint32(q)
	}
	return maxKnown
}

// scratch is reused between calls; a pool keeps the Router safe for concurrent
// use without allocating per decision.
type scratch struct {
	known, unknown, tmp []entry
	offline, tmpOff     []entry   // people without a connected phone, known or not
	dist                []float64 // by person index: the estimate, for known entries
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// origin holds what every distance of one call shares, so the per-person estimate
// needs no trigonometry.
type origin struct {
	lat, lon float64
	floor    int
	penaltyM float64
	// Metres per degree: of latitude (my), of longitude at the origin (mx), and how
	// mx changes per degree of latitude away from it, halved for the mid latitude (dmx).
	my, mx, dmx float64
}

func newOrigin(loc vakt.Location, penaltyM float64) origin {
	rad := loc.Lat * degToRad
	my := earthRadiusM * degToRad
	return origin{
		lat: loc.Lat, lon: loc.Lon, floor: loc.Floor, penaltyM: penaltyM,
		my: my, mx: my * math.Cos(rad), dmx: my * math.Sin(rad) * degToRad / 2,
	}
}

// estimate is an equirectangular distance with the longitude scale taken at the
// mid latitude by a first-order expansion around the origin. At site scale it stays
// within micrometres of the haversine, which is all the ordering needs. It is kept
// small enough to inline, as it runs once per person per decision; sites by the
// antimeridian use estimateAcross.
func (o *origin) estimate(p *vakt.Position) float64 {
	dLat := p.Lat - o.lat
	x := (p.Lon - o.lon) * (o.mx - o.dmx*dLat)
	y := dLat * o.my
	return math.Sqrt(x*x+y*y) + o.floorPenalty(p.Floor)
}

// estimateAcross is estimate with the longitude difference wrapped into
// [-180, 180], for sites within reach of the antimeridian.
func (o *origin) estimateAcross(p *vakt.Position) float64 {
	q := *p
	q.Lon = o.lon + math.Remainder(p.Lon-o.lon, 360)
	return o.estimate(&q)
}

// across reports whether positions near the site may lie across the antimeridian.
// Elsewhere a difference over 180° means a position half a world away, which
// ranks last either way.
func (o *origin) across() bool { return math.Abs(o.lon) > 170 }

// exact is the distance reported for an offer: golang-geo's great circle plus the
// floor penalty.
func (o *origin) exact(p *vakt.Position) float64 {
	km := geo.NewPoint(o.lat, o.lon).GreatCircleDistance(geo.NewPoint(p.Lat, p.Lon))
	return km*1000 + o.floorPenalty(p.Floor)
}

func (o *origin) floorPenalty(floor int) float64 {
	return o.penaltyM * math.Abs(float64(floor-o.floor))
}

// validCoord rejects coordinates that cannot be a real place. (0, 0) is what a
// transmitter without coordinates or a phone without a fix reports; no care home
// lies in the Gulf of Guinea, so it means "unknown", not "there".
func validCoord(lat, lon float64) bool {
	// NaN fails every comparison, so it fails the range check too.
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 && (lat != 0 || lon != 0)
}

// eligible reports whether p may be offered an alarm of tier t. zone is the zone a
// zone tier covers. It must stay small enough to inline: it runs once per person
// per decision.
func eligible(t *Tier, p *Person, zone string) bool {
	if !p.OnDuty || p.HandlingEmergency {
		return false
	}
	switch p.Availability {
	case vakt.Available:
	case vakt.Busy:
		if !t.IncludeBusy {
			return false
		}
	default: // away, or a value we do not know: never alarm on a guess
		return false
	}
	if t.Target == TargetZone && p.Zone != zone {
		return false
	}
	return vakt.Staff{Roles: p.Roles}.HasRole(t.Roles...)
}

// interruptible reports whether p is busy with exactly one alarm, less urgent
// than prio.
func interruptible(p *Person, prio vakt.Priority) bool {
	return p.Availability == vakt.Busy && p.Active == 1 && p.ActivePriority > prio
}

// excluder answers "does this person already hold an offer this round?". Offers
// are few, so a scan beats a map until they are not.
type excluder struct {
	offers []vakt.Offer
	set    map[vakt.StaffID]struct{}
}

const excluderScanMax = 16

func newExcluder(offers []vakt.Offer) excluder {
	e := excluder{offers: offers}
	if len(offers) > excluderScanMax {
		e.set = make(map[vakt.StaffID]struct{}, len(offers))
		for _, o := range offers {
			e.set[o.Staff] = struct{}{}
		}
	}
	return e
}

func (e *excluder) has(id vakt.StaffID) bool {
	if e.set != nil {
		_, ok := e.set[id]
		return ok
	}
	for i := range e.offers {
		if e.offers[i].Staff == id {
			return true
		}
	}
	return false
}

// rankRequest is one ranking: tier, world, who to leave out, how many to return
// (k < 0: all) and how many of the first to confirm with golang-geo.
type rankRequest struct {
	tier    *Tier
	env     *Env
	skip    excluder
	k       int
	confirm int
	// interrupt: busy staff whose only active alarm is less urgent than prio count.
	interrupt bool
	prio      vakt.Priority
}

// rank appends the request's candidates, in offer order, to dst.
//
// Ordering runs on a cheap estimate (no trigonometry per person); only the first
// `confirm` candidates, the ones about to be offered, get golang-geo's great-circle
// distance. When only a few are wanted a bounded insertion selects them in one pass;
// otherwise a radix sort orders everyone without a comparison per pair.
func (r *Router) rank(dst []Candidate, req rankRequest) []Candidate {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	people := req.env.People
	o := newOrigin(req.env.Origin, r.cfg.FloorPenaltyM)
	r.collect(s, &req, &o)

	n := len(s.known) + len(s.unknown) + len(s.offline)
	k := req.k
	if k < 0 || k > n {
		k = n
	}
	var es []entry
	selected := k <= selectMax && k < n // es[:k] final, ties included
	if selected {
		es = append(append(s.known, s.unknown...), s.offline...)
		selectFirst(es, k, people)
	} else {
		if need := max(len(s.known), len(s.offline)); cap(s.tmp) < need {
			s.tmp = make([]entry, need)
		}
		// By key only: ties are ordered below, run by run, as they are emitted.
		es = append(radixSort(s.known, s.tmp[:len(s.known)]), s.unknown...)
		if len(s.offline) > 0 {
			if cap(s.tmpOff) < len(s.offline) {
				s.tmpOff = make([]entry, len(s.offline))
			}
			es = append(es, radixSort(s.offline, s.tmpOff[:len(s.offline)])...)
		}
	}
	// es may have grown or be tmp: keep whichever buffers are largest for next time.
	if cap(es) > cap(s.known) {
		s.known, s.tmp = es[:0], s.known[:0]
	}

	if dst == nil {
		dst = make([]Candidate, 0, k)
	}
	for i := 0; i < k; {
		j := k
		if !selected {
			j = i + 1
			for j < len(es) && es[j].key() == es[i].key() {
				j++
			}
			if j-i > 1 {
				slices.SortFunc(es[i:j], func(a, b entry) int { return compareEntries(a, b, people) })
			}
		}
		for ; i < min(j, k); i++ {
			e := es[i]
			p := &people[e.idx()]
			d := -1.0
			if !unknown(e.key()) {
				d = s.dist[e.idx()]
				if i < req.confirm {
					d = o.exact(p.Position)
				}
			}
			dst = append(dst, Candidate{Staff: p.Staff, DistanceM: d})
		}
	}
	return dst
}

// collect fills s.known and s.unknown with the request's candidates, in People
// order, and s.dist with the known ones' estimates.
func (r *Router) collect(s *scratch, req *rankRequest, o *origin) {
	env, t := req.env, req.tier
	zone := t.Zone
	if zone == "" {
		zone = env.Origin.Zone
	}
	useDistance := r.cfg.NearestEnabled && validCoord(env.Origin.Lat, env.Origin.Lon)
	across := o.across()
	fresh := newCutoff(env.Now.Add(-r.cfg.PositionTTL))
	if cap(s.dist) < len(env.People) {
		s.dist = make([]float64, len(env.People))
	}
	dist := s.dist[:len(env.People)]
	known, unknowns, offline := s.known[:0], s.unknown[:0], s.offline[:0]
	if t.Target == TargetPrimary || (req.interrupt && req.prio > 0) {
		// Their extra checks get a loop of their own: the common one stays as lean
		// as it was, P3 counts every branch in it.
		interrupt, primary := req.interrupt && req.prio > 0, t.Target == TargetPrimary
		// Busy staff who may be interrupted are judged as if the tier included
		// busy staff.
		busyTier := *t
		busyTier.IncludeBusy = true
		for i := range env.People {
			p := &env.People[i]
			if !eligible(t, p, zone) && !(interrupt && interruptible(p, req.prio) && eligible(&busyTier, p, zone)) {
				continue
			}
			if req.skip.has(p.Staff) || primary && !slices.Contains(env.Primary, p.Staff) {
				continue
			}
			if pos := p.Position; useDistance && pos != nil && validCoord(pos.Lat, pos.Lon) && fresh.keeps(pos.At) {
				d := o.estimate(pos)
				if across {
					d = o.estimateAcross(pos)
				}
				dist[i] = d
				if p.Offline {
					offline = append(offline, pack(quantise(d)|offlineBit, i))
				} else {
					known = append(known, pack(quantise(d), i))
				}
			} else if p.Offline {
				offline = append(offline, pack(math.MaxUint32, i))
			} else {
				unknowns = append(unknowns, pack(unknownKey, i))
			}
		}
		s.known, s.unknown, s.offline = known, unknowns, offline
		return
	}
	for i := range env.People {
		p := &env.People[i]
		if !eligible(t, p, zone) || req.skip.has(p.Staff) {
			continue
		}
		if pos := p.Position; useDistance && pos != nil && validCoord(pos.Lat, pos.Lon) && fresh.keeps(pos.At) {
			d := o.estimate(pos)
			if across {
				d = o.estimateAcross(pos)
			}
			dist[i] = d
			if p.Offline {
				offline = append(offline, pack(quantise(d)|offlineBit, i))
			} else {
				known = append(known, pack(quantise(d), i))
			}
		} else if p.Offline {
			offline = append(offline, pack(math.MaxUint32, i))
		} else {
			unknowns = append(unknowns, pack(unknownKey, i))
		}
	}
	s.known, s.unknown, s.offline = known, unknowns, offline
}

// cutoff is the oldest time a position may have, taken apart once so the check
// per person inlines: a call would spill every loop invariant (Go keeps none in
// registers across calls).
type cutoff struct {
	sec  int64
	nsec int
}

func newCutoff(t time.Time) cutoff { return cutoff{t.Unix(), t.Nanosecond()} }

func (c cutoff) keeps(t time.Time) bool {
	s := t.Unix()
	return s > c.sec || s == c.sec && t.Nanosecond() >= c.nsec
}

// selectMax bounds the insertion selection: beyond it sorting everyone is cheaper.
const selectMax = 16

// selectFirst moves the k best entries, in order, to the front of es (k < len(es)).
func selectFirst(es []entry, k int, people []Person) {
	slices.SortFunc(es[:k], func(a, b entry) int { return compareEntries(a, b, people) })
	for i := k; i < len(es); i++ {
		e := es[i]
		// Most entries lose to the current k-th on the key alone.
		if e.key() > es[k-1].key() || compareEntries(e, es[k-1], people) >= 0 {
			continue
		}
		j := k - 1
		for j > 0 && compareEntries(e, es[j-1], people) < 0 {
			j--
		}
		// Keep es a permutation: the displaced k-th goes where e was.
		es[i] = es[k-1]
		copy(es[j+1:k], es[j:k-1])
		es[j] = e
	}
}

// radixSort sorts es by key, stably, using tmp (same length) as the other buffer,
// and returns whichever of the two holds the result. One pass per key byte that
// differs between keys: two on a site.
func radixSort(es, tmp []entry) []entry {
	var or, and uint32 = 0, math.MaxUint32
	for _, e := range es {
		or |= e.key()
		and &= e.key()
	}
	varies := or ^ and
	src, dst := es, tmp
	for shift := 32; shift < 64; shift += 8 {
		if varies>>(shift-32)&0xff == 0 {
			continue // every key has this byte
		}
		var c [256]int32
		for _, e := range src {
			c[e>>shift&0xff]++
		}
		var sum int32
		for b, n := range c {
			c[b] = sum
			sum += n
		}
		for _, e := range src {
			b := e >> shift & 0xff
			dst[c[b]] = e
			c[b]++
		}
		src, dst = dst, src
	}
	return src
}

// compareEntries orders by distance; on a tie whoever was offered least recently
// first (never offered before all), then by staff id so equal inputs always give
// the same order.
func compareEntries(a, b entry, people []Person) int {
	if ka, kb := a.key(), b.key(); ka != kb {
		if ka < kb {
			return -1
		}
		return 1
	}
	pa, pb := &people[a.idx()], &people[b.idx()]
	if c := pa.LastOfferedAt.Compare(pb.LastOfferedAt); c != 0 {
		return c
	}
	return strings.Compare(string(pa.Staff), string(pb.Staff))
}
