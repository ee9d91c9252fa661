//! One connection's state machine fed arbitrary bytes, both ways, in arbitrary chunks.
//!
//! Input: one config byte (bit 0: the capture starts mid-connection; bit 1: small limits),
//! then records `[ctl, len_lo, len_hi, bytes...]`. `ctl` bit 0 is the direction (0 c2s, 1 s2c),
//! bits 1-2 the operation: 0 and 3 feed the next `len` bytes (fewer at the end of the input),
//! 1 reports a gap of `len` bytes, 2 a half close. The connection is closed at the end.
//!
//! The same input is then decoded as a second connection on the same thread, where the frames
//! of the first are remembered (`flow::memo`): its events must be the first's.
#![no_main]

use dispel::flow::{Limits, Session};
use dispel::trace::{Dir, Event};
use libfuzzer_sys::fuzz_target;

fn check(out: &mut Vec<Event>, all: &mut Vec<Event>) {
    for e in out.drain(..) {
        // Every event's fields serialize.
        serde_json::to_string(&e.fields).expect("fields serialize");
        all.push(e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(first) = run(1, data) else {
        return;
    };
    let mut second = run(2, data).expect("the same input");
    for e in &mut second {
        if e.conn == Some(2) {
            e.conn = Some(1);
        }
    }
    assert!(first == second, "a second connection decoded the same bytes differently");
});

fn run(conn: u64, data: &[u8]) -> Option<Vec<Event>> {
    let (&cfg, mut rest) = data.split_first()?;
    let limits = if cfg & 2 != 0 {
        Limits {
            max_headers: 8,
            max_head_bytes: 256,
            max_message: 256,
        }
    } else {
        Limits::default()
    };
    let mut s = if cfg & 1 != 0 {
        Session::new_midstream(conn, limits)
    } else {
        Session::new(conn, limits)
    };
    // A memo of its own per input: copies of a frame within one input are recalled from it.
    s = s.with_memo(dispel::flow::Memo::shared());
    let mut out = Vec::new();
    let mut all = Vec::new();
    let mut t = 0.0;
    while let [ctl, lo, hi, tail @ ..] = rest {
        let dir = if ctl & 1 == 0 { Dir::C2S } else { Dir::S2C };
        let len = usize::from(u16::from_le_bytes([*lo, *hi]));
        rest = tail;
        match (ctl >> 1) & 3 {
            1 => s.gap(dir, t, len as u64, &mut out),
            2 => {
                s.half_close(dir);
            }
            _ => {
                let n = len.min(rest.len());
                s.data(dir, t, &rest[..n], &mut out);
                rest = &rest[n..];
            }
        }
        check(&mut out, &mut all);
        t += 0.001;
    }
    s.close(t, "fin", &mut out);
    check(&mut out, &mut all);
    Some(all)
}
