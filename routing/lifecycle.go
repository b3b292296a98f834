package routing

import (
	"math"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
)

// step is one decision about one alarm: the alarm being changed, its policy, the
// world at that moment and the actions the decision produces.
type step struct {
	r    *Router
	a    *vakt.Alarm
	pol  Policy
	env  Env // a copy: a pointer would make the caller's Env escape with acts
	acts []Action
}

// newStep starts a decision. It gives the alarm its own copy of Offers first:
// routing edits offers in place, and a caller that kept the previous alarm value
// (to roll back a failed commit, say) must not see that value change under it.
func (r *Router) newStep(a *vakt.Alarm, env *Env) step {
	a.Offers = slices.Clone(a.Offers)
	return step{r: r, a: a, pol: r.policyFor(a, env), env: *env}
}

// live reports whether an offer is still out: ringing or rung, unanswered.
func live(s vakt.OfferStatus) bool {
	return s == vakt.OfferPending || s == vakt.OfferDelivered
}

// findOffer returns the index of staff's offer in the current round, -1 if none.
// Nobody holds two: live holders and refusers are not offered again in a round.
func findOffer(a *vakt.Alarm, staff vakt.StaffID) int {
	if staff == "" {
		return -1
	}
	for i := len(a.Offers) - 1; i >= 0; i-- {
		if a.Offers[i].Staff == staff {
			return i
		}
	}
	return -1
}

// unassigned reports whether the alarm is being offered and nobody has it yet.
func unassigned(a *vakt.Alarm) bool {
	return (a.State == vakt.StateOffered || a.State == vakt.StateForwarded) && a.Assignee == ""
}

func (s *step) now() time.Time { return s.env.Now }

// tier returns the current tier, nil when Tier is out of range (before the first
// offer, or a reload shortened the policy).
func (s *step) tier() *Tier {
	if s.a.Tier < 1 || s.a.Tier > len(s.pol.Tiers) {
		return nil
	}
	return &s.pol.Tiers[s.a.Tier-1]
}

// inTier reports whether o was made by the current tier of this round. Offers kept
// open from an earlier round may carry the same tier number but predate the tier.
func (s *step) inTier(o *vakt.Offer) bool {
	return o.Tier == s.a.Tier && !o.OfferedAt.Before(s.a.TierStartedAt)
}

func (s *step) liveInTier() int {
	n := 0
	for i := range s.a.Offers {
		if o := &s.a.Offers[i]; s.inTier(o) && live(o.Status) {
			n++
		}
	}
	return n
}

// fill offers the current local tier to whoever it still lacks: a nearest tier up to
// Count live offers, the others to every candidate not yet offered this round. It
// returns how many were offered.
func (s *step) fill() int {
	t := s.tier()
	k, confirm := -1, math.MaxInt
	if t.Target == TargetNearest {
		k = t.count() - s.liveInTier()
		if k <= 0 {
			return 0
		}
		confirm = k
	}
	var buf [8]Candidate
	cands := s.r.rank(buf[:0], rankRequest{
		tier: t, env: &s.env, skip: newExcluder(s.a.Offers), k: k, confirm: confirm,
		interrupt: t.InterruptBusy || s.pol.InterruptBusy, prio: s.a.Priority,
	})
	s.a.Offers = slices.Grow(s.a.Offers, len(cands))
	s.acts = slices.Grow(s.acts, len(cands))
	for _, c := range cands {
		s.a.Offers = append(s.a.Offers, vakt.Offer{
			Staff:     c.Staff,
			Tier:      s.a.Tier,
			Status:    vakt.OfferPending,
			OfferedAt: s.now(),
			DistanceM: c.DistanceM,
		})
		s.acts = append(s.acts, Action{Kind: ActOffer, Staff: c.Staff})
	}
	return len(cands)
}

// startTier offers the current tier, which just began. It reports whether the tier
// is worth waiting for: someone was offered, or it is an ARC tier with a wait.
func (s *step) startTier() bool {
	t := s.tier()
	if t.Target == TargetPager {
		// The paging system rings its handset; its holder answers in person or
		// on the call system, so the tier's wait runs like any other.
		s.acts = append(s.acts, Action{Kind: ActPage, Pager: t.Pager, CallAddress: t.CallAddress})
		return true
	}
	if t.Target != TargetARC {
		return s.fill() > 0
	}
	s.forward()
	return t.Wait > 0
}

// forward hands the alarm to the centre, once per alarm.
func (s *step) forward() {
	s.a.State = vakt.StateForwarded
	if !s.a.Forwarded {
		s.a.Forwarded = true
		s.acts = append(s.acts, Action{Kind: ActForward})
	}
}

// startGroup starts the current tier and the parallel tiers right after it, which
// begin with it (the centre told at once at night, beside the nearest nurse). The
// current tier keeps the timers; it reports what startTier reports for it.
func (s *step) startGroup() bool {
	worth := s.startTier()
	for _, t := range s.pol.Tiers[s.a.Tier:] {
		if !t.Parallel {
			break
		}
		switch t.Target {
		case TargetARC:
			s.forward()
		case TargetPager:
			s.acts = append(s.acts, Action{Kind: ActPage, Pager: t.Pager, CallAddress: t.CallAddress})
		}
	}
	return worth
}

// nextLead is the number of the next tier after tier i that is not parallel (those
// started with the tier before them), len(Tiers)+1 when none is left.
func (s *step) nextLead(i int) int {
	i++
	for i <= len(s.pol.Tiers) && s.pol.Tiers[i-1].Parallel {
		i++
	}
	return i
}

// escalate moves on to the next tier that offers someone; earlier offers stay open.
// Past the last tier an alarm the centre has stays with it; any other starts a new
// round from tier 1. A round that offered nobody at all waits out tier 1's wait and
// is tried again from there, so an open alarm always has a deadline and yet nobody
// waits a tier's timeout with no one offered when anyone is there to offer.
//
// roundStarted says the caller began this round itself (raise, re-alarm).
func (s *step) escalate(roundStarted bool) {
	a := s.a
	n := len(s.pol.Tiers)
	for {
		next := s.nextLead(a.Tier)
		if next > n {
			if a.Forwarded && hasARC(&s.pol) {
				a.Tier = n
				return
			}
			if roundStarted {
				a.Tier, a.TierStartedAt = 1, s.now()
				return
			}
			s.newRound()
			roundStarted = true
			next = 1
		}
		a.Tier = next
		a.TierStartedAt = s.now()
		if s.startGroup() {
			return
		}
	}
}

// newRound starts another pass through the tiers. Refusals and unreachable marks of
// the last round no longer count; offers still out stay out (and their holders are
// not asked twice).
func (s *step) newRound() {
	s.a.Round++
	s.a.Offers = slices.DeleteFunc(s.a.Offers, func(o vakt.Offer) bool { return !live(o.Status) })
	s.a.Tier = 0
}

// expireUnconfirmed marks offers whose phone never confirmed as unreachable and
// withdraws them, so a phone that rang silently stops ringing for an alarm it can
// no longer take.
func (s *step) expireUnconfirmed() {
	for i := range s.a.Offers {
		o := &s.a.Offers[i]
		if o.Status == vakt.OfferPending && !s.now().Before(o.OfferedAt.Add(s.r.cfg.OfferConfirm)) {
			o.Status = vakt.OfferUnreachable
			s.acts = append(s.acts, Action{Kind: ActWithdraw, Staff: o.Staff})
		}
	}
}

// advance brings an unassigned alarm up to date: the current tier is topped up, or
// left for the next when its wait ran out or nobody in it can still answer.
func (s *step) advance() {
	t := s.tier()
	if t == nil || !s.now().Before(s.a.TierStartedAt.Add(t.Wait)) {
		s.escalate(false)
		return
	}
	if t.Target == TargetARC || t.Target == TargetPager {
		return // the centre or the pager has it; later tiers follow its wait
	}
	s.fill()
	if s.liveInTier() == 0 {
		s.escalate(false)
	}
}

// reAlarm takes an accepted alarm back from an assignee who never arrived and
// offers it again from tier 1; the assignee is a candidate like anyone else.
func (s *step) reAlarm() {
	a := s.a
	prev := a.Assignee
	a.Assignee, a.AcceptedAt = "", time.Time{}
	a.State = vakt.StateOffered
	s.acts = append(s.acts, Action{Kind: ActUpdate, Staff: prev})
	s.newRound()
	s.escalate(true)
}

// settle runs every timer due at now and sets the next deadline. Every decision
// ends with it, so an overdue deadline fires with whatever call comes first.
func (s *step) settle() {
	a := s.a
	switch {
	case a.State == vakt.StateAccepted:
		if d := s.pol.ReAlarmAfter; d > 0 && !s.now().Before(a.AcceptedAt.Add(d)) {
			s.reAlarm()
		}
	case unassigned(a):
		s.expireUnconfirmed()
		s.advance()
	}
	s.setDeadline()
}

// setDeadline sets when the alarm next needs a decision: the earliest delivery
// confirmation due and the current tier's end, or the re-alarm time.
func (s *step) setDeadline() {
	a := s.a
	a.Deadline = time.Time{}
	switch {
	case a.State == vakt.StateAccepted:
		if d := s.pol.ReAlarmAfter; d > 0 {
			a.Deadline = a.AcceptedAt.Add(d)
		}
		return
	case !unassigned(a):
		return
	}
	earliest := func(t time.Time) {
		if a.Deadline.IsZero() || t.Before(a.Deadline) {
			a.Deadline = t
		}
	}
	for i := range a.Offers {
		if o := &a.Offers[i]; o.Status == vakt.OfferPending {
			earliest(o.OfferedAt.Add(s.r.cfg.OfferConfirm))
		}
	}
	if t := s.tier(); t != nil && !s.exhausted() {
		earliest(a.TierStartedAt.Add(t.Wait))
	}
}

// exhausted reports whether the alarm went through every tier and the centre has
// it: the last tier's end would lead nowhere, so nothing is left to time but
// delivery confirmations.
func (s *step) exhausted() bool {
	return s.a.Forwarded && s.a.Tier == len(s.pol.Tiers) && hasARC(&s.pol)
}

// liveHolders returns who holds a live offer now.
func (s *step) liveHolders() []vakt.StaffID {
	var ids []vakt.StaffID
	for i := range s.a.Offers {
		if o := &s.a.Offers[i]; live(o.Status) {
			ids = append(ids, o.Staff)
		}
	}
	return ids
}

// notifyChange tells whoever held a live offer before the decision, and still does,
// and the assignee, that the alarm changed. Offers made by the decision itself
// already carry the change.
func (s *step) notifyChange(before []vakt.StaffID) {
	for _, id := range before {
		if i := findOffer(s.a, id); i >= 0 && live(s.a.Offers[i].Status) {
			s.acts = append(s.acts, Action{Kind: ActUpdate, Staff: id})
		}
	}
	if s.a.Assignee != "" {
		s.acts = append(s.acts, Action{Kind: ActUpdate, Staff: s.a.Assignee})
	}
}
