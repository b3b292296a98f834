// The app's logic without the DOM: the offer state machine, the reconnect delay and
// time words. app.js draws what this decides; the browser test drives both.

export const OPEN_STATES = ['raised', 'offered', 'accepted', 'present', 'forwarded'];

// How long a taken, withdrawn or closed alarm stays on screen, greyed, so the nurse
// sees why it stopped ringing.
export const TOMBSTONE_MS = 60_000;

// backoff is the wait before reconnect attempt n (0-based): 1, 2, 4, 8 s, then 10 s.
export function backoff(n) {
  return Math.min(1000 * 2 ** Math.max(0, n), 10_000);
}

// Entry: {alarm, offered, ringing, offers, gone, by, goneAt}
//   offered: this staff member was offered it (accept/reject make sense)
//   ringing: offered and not yet answered, taken, withdrawn or closed
//   offers:  how many offer messages arrived (a reconnect sends them again)
//   gone:    null | 'taken' | 'withdrawn' | 'rejected' | 'closed'
export class AlarmStore {
  constructor(me) {
    this.me = me;
    this.entries = new Map();
  }

  entry(id) {
    return this.entries.get(id);
  }

  // offer: {"type":"offer"} — ring unless this phone already answered it.
  offer(alarm, now) {
    const e = this.entries.get(alarm.id);
    const answeredByMe = alarm.assignee === this.me;
    this.entries.set(alarm.id, {
      alarm,
      offered: true,
      ringing: !answeredByMe && OPEN_STATES.includes(alarm.state),
      offers: (e ? e.offers : 0) + 1,
      gone: null,
      by: null,
      goneAt: 0,
      changedAt: now,
    });
  }

  // taken: someone accepted it. By me → it is mine; else it stops ringing and
  // stays greyed for a while.
  taken(id, by, now) {
    const e = this.entries.get(id);
    if (!e) return;
    e.changedAt = now;
    e.ringing = false;
    e.alarm = { ...e.alarm, state: 'accepted', assignee: by };
    if (by !== this.me) {
      e.gone = 'taken';
      e.by = by;
      e.goneAt = now;
    }
  }

  withdrawn(id, now) {
    const e = this.entries.get(id);
    if (!e) return;
    e.changedAt = now;
    e.ringing = false;
    e.gone = 'withdrawn';
    e.goneAt = now;
  }

  // update: any other change. A closed alarm, or one now handled by someone else,
  // stops ringing. "Taken" is news only for someone it was offered to; a nurse
  // lead who sees every alarm keeps following it until it closes.
  update(alarm, now) {
    let e = this.entries.get(alarm.id);
    if (!e) {
      e = { alarm, offered: false, ringing: false, offers: 0, gone: null, by: null, goneAt: 0 };
      this.entries.set(alarm.id, e);
    }
    e.alarm = alarm;
    e.changedAt = now;
    if (!OPEN_STATES.includes(alarm.state)) {
      e.ringing = false;
      e.gone = 'closed';
      e.goneAt = now;
    } else if (alarm.assignee && alarm.assignee !== this.me && e.offered) {
      e.ringing = false;
      e.gone = 'taken';
      e.by = alarm.assignee;
      e.goneAt = now;
    } else {
      e.gone = null;
      if (alarm.assignee === this.me) e.ringing = false;
    }
  }

  // answered: this phone's own accept/reject/presence/complete succeeded.
  answered(action, alarm, now) {
    const e = this.entries.get(alarm.id) || { offered: true, offers: 0, by: null };
    e.alarm = alarm;
    e.changedAt = now;
    e.ringing = false;
    e.gone = null;
    e.goneAt = 0;
    if (action === 'reject') {
      e.gone = 'rejected';
      e.goneAt = now;
      e.rejected = true;
    } else if (!OPEN_STATES.includes(alarm.state)) {
      e.gone = 'closed';
      e.goneAt = now;
    }
    this.entries.set(alarm.id, e);
  }

  // list merges GET /api/v1/alarms, asked for at since: the server's open alarms
  // are the truth; an entry the server no longer lists is closed (unless already
  // greyed). Entries changed by a push or an answer after since keep that news.
  list(alarms, now, since = now) {
    const seen = new Set();
    for (const a of alarms) {
      seen.add(a.id);
      const e = this.entries.get(a.id);
      if (e && e.changedAt > since) continue;
      if (!e) {
        this.entries.set(a.id, { alarm: a, offered: false, ringing: false, offers: 0, gone: null, by: null, goneAt: 0 });
      } else if (!e.gone) {
        e.alarm = a;
        if (a.assignee && a.assignee !== this.me && e.offered) {
          e.ringing = false;
          e.gone = 'taken';
          e.by = a.assignee;
          e.goneAt = now;
        } else if (a.assignee === this.me) {
          e.ringing = false;
        }
      }
    }
    for (const [id, e] of this.entries) {
      if (!seen.has(id) && !e.gone && !(e.changedAt > since)) {
        e.ringing = false;
        e.gone = 'closed';
        e.goneAt = now;
      }
    }
  }

  // prune forgets greyed entries after TOMBSTONE_MS.
  prune(now) {
    let changed = false;
    for (const [id, e] of this.entries) {
      if (e.gone && now - e.goneAt >= TOMBSTONE_MS) {
        this.entries.delete(id);
        changed = true;
      }
    }
    return changed;
  }

  // ringing lists the alarms that ring, most urgent first.
  ringing() {
    return this.sorted().filter((e) => e.ringing);
  }

  // sorted lists every entry: open before greyed, then by priority, then oldest first.
  sorted() {
    return [...this.entries.values()].sort((x, y) =>
      (x.gone ? 1 : 0) - (y.gone ? 1 : 0) ||
      x.alarm.priority - y.alarm.priority ||
      String(x.alarm.raised_at).localeCompare(String(y.alarm.raised_at)));
  }

  // actions says which buttons an entry gets.
  actions(e) {
    if (e.gone) return [];
    const a = e.alarm;
    if (a.assignee === this.me) {
      if (a.state === 'accepted') return ['presence', 'complete'];
      if (a.state === 'present') return ['complete'];
      return [];
    }
    if (e.offered && !a.assignee && !e.rejected) return ['accept', 'reject'];
    return [];
  }
}

// ago renders how long ago t was, coarse: seconds, minutes, hours.
export function ago(t, from, now) {
  const s = Math.max(0, Math.round((now - Date.parse(from)) / 1000));
  if (s < 60) return t('ago.s', { n: s });
  if (s < 3600) return t('ago.m', { n: Math.floor(s / 60) });
  return t('ago.h', { n: Math.floor(s / 3600) });
}

// retryAfter reads a Retry-After header in seconds (the login throttle).
export function retryAfter(v) {
  const n = parseInt(v, 10);
  return Number.isFinite(n) && n > 0 ? n : 30;
}
