// Small tests of the app's logic, run by browser_test.go inside Chromium on the
// modules the gateway serves. The expression resolves to a list of failures.
(async () => {
  const L = await import('/app/logic.js');
  const I = await import('/app/i18n.js');
  const fails = [];
  const eq = (what, got, want) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) fails.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const alarm = (id, extra = {}) => ({ id, kind: 'emergency', priority: 1, state: 'offered', transmitter: { room: '101' },
    raised_at: '2026-11-28T14:00:00Z', count: 1, tier: 1, assignee: null, ...extra });

  // Reconnect delay: doubling from 1 s, capped at 10 s.
  eq('backoff', [0, 1, 2, 3, 4, 9].map(L.backoff), [1000, 2000, 4000, 8000, 10000, 10000]);

  // Language: bokmål for any Norwegian, English otherwise, a saved choice wins.
  eq('nb', I.pickLang(['nb-NO', 'en']), 'nb');
  eq('no', I.pickLang(['no']), 'nb');
  eq('nn', I.pickLang(['nn-NO']), 'nb');
  eq('de falls back', I.pickLang(['de-DE', 'fr']), 'en');
  eq('en before nb', I.pickLang(['en-US', 'nb']), 'en');
  eq('saved wins', I.pickLang(['nb-NO'], 'en'), 'en');
  const tn = I.translator('nb');
  eq('t vars', tn('gone.taken', { by: 'nurse-1' }), 'Tatt av nurse-1');
  eq('t missing key', tn('no.such.key'), 'no.such.key');
  // Every English key has a bokmål text.
  for (const k of Object.keys(I.dict.en)) if (!(k in I.dict.nb)) fails.push('bokmål lacks ' + k);

  // An offer rings; taken by someone else stops it and says by whom.
  let s = new L.AlarmStore('nurse-2');
  s.offer(alarm('a-1'), 1000);
  eq('offer rings', s.ringing().map((e) => e.alarm.id), ['a-1']);
  eq('offer actions', s.actions(s.entry('a-1')), ['accept', 'reject']);
  s.taken('a-1', 'nurse-1', 2000);
  eq('taken stops ringing', s.ringing().length, 0);
  eq('taken state', [s.entry('a-1').alarm.state, s.entry('a-1').gone, s.entry('a-1').by], ['accepted', 'taken', 'nurse-1']);
  eq('taken no actions', s.actions(s.entry('a-1')), []);
  eq('tombstone kept', s.prune(2000 + L.TOMBSTONE_MS - 1), false);
  eq('tombstone pruned', s.prune(2000 + L.TOMBSTONE_MS), true);
  eq('pruned', s.entry('a-1'), undefined);

  // Mine: accept → presence/complete; present → complete; completed → closed.
  s = new L.AlarmStore('nurse-1');
  s.offer(alarm('a-2'), 1000);
  s.answered('accept', alarm('a-2', { state: 'accepted', assignee: 'nurse-1' }), 1100);
  eq('accepted not ringing', s.ringing().length, 0);
  eq('accepted actions', s.actions(s.entry('a-2')), ['presence', 'complete']);
  s.answered('presence', alarm('a-2', { state: 'present', assignee: 'nurse-1' }), 1200);
  eq('present actions', s.actions(s.entry('a-2')), ['complete']);
  s.answered('complete', alarm('a-2', { state: 'completed', assignee: 'nurse-1' }), 1300);
  eq('completed', [s.entry('a-2').gone, s.actions(s.entry('a-2'))], ['closed', []]);

  // Reject: stops ringing, no buttons, marked as rejected.
  s.offer(alarm('a-3'), 2000);
  s.answered('reject', alarm('a-3'), 2100);
  eq('rejected', [s.ringing().length, s.entry('a-3').gone, s.actions(s.entry('a-3'))], [0, 'rejected', []]);

  // Withdrawn and a closing update stop ringing.
  s.offer(alarm('a-4'), 3000);
  s.withdrawn('a-4', 3100);
  eq('withdrawn', [s.ringing().length, s.entry('a-4').gone], [0, 'withdrawn']);
  s.offer(alarm('a-5'), 3000);
  s.update(alarm('a-5', { state: 'cancelled' }), 3100);
  eq('cancelled update', [s.ringing().length, s.entry('a-5').gone], [0, 'closed']);

  // A reconnect sends the offer again: it rings again and counts the arrivals.
  s = new L.AlarmStore('nurse-1');
  s.offer(alarm('a-6'), 1000);
  s.offer(alarm('a-6'), 5000);
  eq('offer again', [s.ringing().length, s.entry('a-6').offers], [1, 2]);

  // The list: an alarm the server no longer lists is closed; one accepted by
  // someone else is taken; a list older than a push does not undo the push.
  s = new L.AlarmStore('nurse-1');
  s.offer(alarm('a-7'), 1000);
  s.offer(alarm('a-8'), 1000);
  s.list([alarm('a-8', { state: 'accepted', assignee: 'nurse-3' })], 2000, 1500);
  eq('list closes missing', s.entry('a-7').gone, 'closed');
  eq('list marks taken', [s.entry('a-8').gone, s.entry('a-8').by, s.ringing().length], ['taken', 'nurse-3', 0]);
  s = new L.AlarmStore('nurse-1');
  s.list([], 900, 900);
  s.offer(alarm('a-9'), 1000);
  s.list([], 1200, 950); // asked for before the offer arrived
  eq('stale list keeps the newer offer', [s.ringing().length, s.entry('a-9').gone], [1, null]);
  // Sorted: open first, then priority, then oldest.
  s = new L.AlarmStore('lead-1');
  s.list([alarm('b-3', { priority: 3 }), alarm('b-1', { raised_at: '2026-11-28T14:05:00Z' }), alarm('b-2')], 1000, 1000);
  eq('sorted', s.sorted().map((e) => e.alarm.id), ['b-2', 'b-1', 'b-3']);
  eq('seen, not offered: no buttons', s.actions(s.entry('b-1')), []);
  // The lead follows an alarm handled by someone else until it closes.
  s.list([alarm('b-1', { state: 'accepted', assignee: 'nurse-1' }), alarm('b-2'), alarm('b-3', { priority: 3 })], 2000, 2000);
  eq('lead sees accepted', [s.entry('b-1').gone, s.entry('b-1').alarm.state], [null, 'accepted']);
  s.list([alarm('b-2'), alarm('b-3', { priority: 3 })], 3000, 3000);
  eq('lead sees it close', s.entry('b-1').gone, 'closed');

  // Time words.
  const te = I.translator('en');
  const at = Date.parse('2026-11-28T14:00:00Z');
  eq('ago s', L.ago(te, '2026-11-28T14:00:00Z', at + 42_000), '42 s');
  eq('ago m', L.ago(te, '2026-11-28T14:00:00Z', at + 185_000), '3 min');
  eq('ago h nb', L.ago(tn, '2026-11-28T14:00:00Z', at + 7_300_000), '2 t');
  eq('retry-after', [L.retryAfter('12'), L.retryAfter(null), L.retryAfter('x')], [12, 30, 30]);
  return fails;
})()
