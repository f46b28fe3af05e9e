//! The line scanner: one flat JSON object of inspector's event schema
//! (numbers, booleans, strings and arrays of strings) read into
//! [`Flat`](super::fields::Flat) without building a tree; values of keys it
//! does not know are skipped, nested or not. Anything else (`null`, another
//! shape, a cut line) makes it give up, and serde_json reads the line.
//!
//! Hand-written rather than serde_json's derive (or sonic-rs): with either
//! reading the same struct, `inspector timeline` falls below its target of
//! 1M events/s (`cargo xtask bench timeline`; the README has the numbers).

use std::borrow::Cow;

use super::fields::{Field, Flat, KEYS};

pub(super) struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        // inspector writes compact JSON: look for white space only when
        // the expected byte is not there.
        if self.b.get(self.i) != Some(&c) {
            self.ws();
        }
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        match self.b.get(self.i) {
            Some(c) if !c.is_ascii_whitespace() => Some(*c),
            _ => {
                self.ws();
                self.b.get(self.i).copied()
            }
        }
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        self.i += memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
        if self.b[self.i] == b'"' {
            let raw = &self.s[start..self.i];
            self.i += 1;
            return Some(Cow::Borrowed(raw));
        }
        // Escapes: build an owned copy.
        let mut out = String::from(&self.s[start..self.i]);
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let c = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if self.b.get(self.i..self.i + 2)? != b"\\u" {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?.checked_sub(0xdc00)?;
                                0x10000 + ((hi - 0xd800) << 10) + lo
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    }
                }
                _ => {
                    // A run of plain bytes at once, so UTF-8 stays whole.
                    let start = self.i;
                    self.i += memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
                    out.push_str(&self.s[start..self.i]);
                }
            }
        }
    }

    /// A key: inspector's keys are short and never escaped, so a plain
    /// loop beats a vectorised search.
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        while *self.b.get(self.i)? != b'"' {
            if self.b[self.i] == b'\\' {
                return None;
            }
            self.i += 1;
        }
        self.i += 1;
        Some(&self.s[start..self.i - 1])
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// An unsigned decimal, accumulated as it is scanned. Numbers are
    /// most of what an event holds, so this is the scanner's hottest loop.
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        if !self.b.get(self.i)?.is_ascii_digit() {
            self.ws();
        }
        let start = self.i;
        let mut i = start;
        let mut n: u64 = 0;
        // Eight digits at a time while they last: timestamps and
        // namespace inodes have 10 to 13.
        while let Some(chunk) = self.b.get(i..i + 8) {
            let v = u64::from_le_bytes(chunk.try_into().ok()?);
            if !eight_digits(v) {
                break;
            }
            n = n.wrapping_mul(100_000_000).wrapping_add(parse_eight(v));
            i += 8;
        }
        while let Some(&c) = self.b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        self.i = i;
        // 19 digits always fit in a u64; beyond, check properly.
        if digits > 19 {
            return self.s[start..i].parse().ok();
        }
        Some(n)
    }

    fn int(&mut self) -> Option<i64> {
        self.ws();
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
            let n = self.uint()?;
            return if n == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(n).ok().map(|n| -n)
            };
        }
        i64::try_from(self.uint()?).ok()
    }

    fn word(&mut self, w: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.word("true") {
            Some(true)
        } else if self.word("false") {
            Some(false)
        } else {
            None
        }
    }

    fn strings(&mut self) -> Option<Vec<Cow<'a, str>>> {
        self.eat(b'[')?;
        let mut v = Vec::new();
        if self.eat(b']').is_some() {
            return Some(v);
        }
        loop {
            v.push(self.string()?);
            if self.eat(b']').is_some() {
                return Some(v);
            }
            self.eat(b',')?;
        }
    }

    /// Skips any value.
    pub(super) fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'[' | b'{' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'[' | b'{' => {
                            depth += 1;
                            self.i += 1;
                        }
                        b']' | b'}' => {
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        b'"' => {
                            self.string()?;
                        }
                        _ => self.i += 1,
                    }
                }
            }
            b'n' => self.word("null").then_some(()),
            b't' | b'f' => self.boolean().map(drop),
            _ => {
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

/// A value the scanner reads into a field of [`Flat`], by the field's type:
/// the field list names each field's type once and this picks its reader.
pub(super) trait Scan<'a>: Sized {
    fn scan(s: &mut Scanner<'a>) -> Option<Self>;
}

/// Each type by the scanner's reader of it; narrower integers read wide,
/// then checked.
macro_rules! scan_with {
    ($($ty:ty => $read:ident $(, $narrow:ident)?;)*) => {
        $(impl<'a> Scan<'a> for $ty {
            #[inline(always)]
            fn scan(s: &mut Scanner<'a>) -> Option<Self> {
                s.$read()$(?.$narrow().ok())?
            }
        })*
    };
}

scan_with! {
    u64 => uint;
    u32 => uint, try_into;
    u8 => uint, try_into;
    i64 => int;
    i32 => int, try_into;
    bool => boolean;
    Cow<'a, str> => string;
    Vec<Cow<'a, str>> => strings;
}

/// inspector leaves optional fields out rather than writing `null`: present
/// means `Some` (a `null` never gets this far, see [`flat`]).
impl<'a, T: Scan<'a>> Scan<'a> for Option<T> {
    #[inline(always)]
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        T::scan(s).map(Some)
    }
}

/// Whether the eight bytes of `v` (little-endian) are all ASCII digits.
#[inline(always)]
fn eight_digits(v: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    (v & HIGH) | (((v.wrapping_add(0x0606_0606_0606_0606)) & HIGH) >> 4) == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits (first digit in the lowest byte), by
/// pairing neighbours: digits, then pairs, then fours.
#[inline(always)]
fn parse_eight(v: u64) -> u64 {
    let v = (v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32
}

/// `KEYS[n]` as three little-endian words and masks, so that matching a
/// predicted key is three compares rather than a call to memcmp.
struct Packed {
    words: [u64; 3],
    masks: [u64; 3],
}

const fn pack(key: &[u8]) -> Packed {
    let mut p = Packed {
        words: [0; 3],
        masks: [0; 3],
    };
    let mut i = 0;
    while i < key.len() {
        p.words[i / 8] |= (key[i] as u64) << (8 * (i % 8));
        p.masks[i / 8] |= 0xff << (8 * (i % 8));
        i += 1;
    }
    p
}

const PACKED: [Packed; KEYS.len()] = {
    let mut out = [const {
        Packed {
            words: [0; 3],
            masks: [0; 3],
        }
    }; KEYS.len()];
    let mut n = 0;
    while n < KEYS.len() {
        assert!(KEYS[n].len() <= 24);
        out[n] = pack(KEYS[n]);
        n += 1;
    }
    out
};

/// Whether `hay` starts with `KEYS[n]`.
#[inline(always)]
fn starts_with_key(hay: &[u8], n: usize) -> bool {
    let Some(chunk) = hay.get(..24) else {
        return hay.starts_with(KEYS[n]);
    };
    let p = &PACKED[n];
    let word = |i: usize| u64::from_le_bytes(chunk[i * 8..i * 8 + 8].try_into().unwrap());
    ((word(0) ^ p.words[0]) & p.masks[0])
        | ((word(1) ^ p.words[1]) & p.masks[1])
        | ((word(2) ^ p.words[2]) & p.masks[2])
        == 0
}

/// Which field followed which the last time: inspector writes its fields
/// in the same order every time, so the next key is nearly always the one
/// predicted, and matching it is a comparison of known bytes.
/// Kept per kind of event (slot 0 until `kind` is read): the fields
/// after `kind` differ from one kind to the next.
pub struct Predictor {
    next: [[u8; KEYS.len() + 1]; KINDS],
}

const KINDS: usize = 32;
const FORK_SLOT: usize = 1;

const fn bit(f: Field) -> u128 {
    1 << f as u8
}

/// The header's fields but `kind`: every event of a task has them.
const HEADER: u128 = bit(Field::v)
    | bit(Field::ktime_ns)
    | bit(Field::time)
    | bit(Field::tgid)
    | bit(Field::tid)
    | bit(Field::ptgid)
    | bit(Field::nspid)
    | bit(Field::comm)
    | bit(Field::start_ns)
    | bit(Field::cgroup_id)
    | bit(Field::pidns)
    | bit(Field::mntns);

const _: () = assert!(KEYS.len() <= 128, "`seen` has a bit per field");

static THREAD: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"thread\":true"));

impl Default for Predictor {
    fn default() -> Self {
        Predictor {
            next: [[u8::MAX; KEYS.len() + 1]; KINDS],
        }
    }
}

/// A slot per kind name: each known kind its own, so that predictions of
/// one kind's fields never evict another's; unknown kinds share the last.
fn kind_slot(kind: &str) -> usize {
    match kind {
        "fork" => FORK_SLOT,
        "exec" => 2,
        "exit" => 3,
        "clone" => 4,
        "unshare" => 5,
        "setns" => 6,
        "mount" => 7,
        "umount" => 8,
        "pivot_root" => 9,
        "chroot" => 10,
        "chdir" => 11,
        "fchdir" => 12,
        "cgroup_mkdir" => 13,
        "cgroup_rmdir" => 14,
        "cgroup_attach" => 15,
        "cgroup_write" => 16,
        "lost" => 17,
        "message" => 18,
        "killed" => 19,
        "syscall_failed" => 20,
        "sched_switch" => 21,
        "sched_wakeup" => 22,
        _ => KINDS - 1,
    }
}

/// The longest key name, and the most names of one length.
const LONGEST: usize = 16;
const SAME_LENGTH: usize = 12;

/// Field numbers by the length of their key's name, `u8::MAX` past the last:
/// looking a key up compares it with a few names, not with all of them.
const BY_LENGTH: [[u8; SAME_LENGTH]; LONGEST + 1] = {
    let mut out = [[u8::MAX; SAME_LENGTH]; LONGEST + 1];
    let mut n = 0;
    while n < KEYS.len() {
        // `"name":`
        let len = KEYS[n].len() - 3;
        assert!(len <= LONGEST);
        let mut k = 0;
        while out[len][k] != u8::MAX {
            k += 1;
        }
        out[len][k] = n as u8;
        n += 1;
    }
    out
};

/// Each field's name as two little-endian words, zero-padded: comparing a
/// key with a name is two compares rather than a call to memcmp.
const NAMES: [u128; KEYS.len()] = {
    let mut out = [0; KEYS.len()];
    let mut n = 0;
    while n < KEYS.len() {
        out[n] = name_word(KEYS[n], 1, KEYS[n].len() - 2);
        n += 1;
    }
    out
};

/// `bytes[from..to]` (at most 16) as a little-endian word, zero-padded.
const fn name_word(bytes: &[u8], from: usize, to: usize) -> u128 {
    let mut word = 0u128;
    let mut i = from;
    while i < to {
        word |= (bytes[i] as u128) << (8 * (i - from));
        i += 1;
    }
    word
}

/// The field whose name `hay` starts with, `len` bytes long (a key just
/// read: the line goes on after it).
#[inline(always)]
fn field(hay: &[u8], len: usize) -> Option<u8> {
    let candidates = BY_LENGTH.get(len)?;
    let word = match hay.get(..16) {
        // Sixteen bytes at once, the name's kept.
        Some(chunk) => {
            let mask = u128::MAX.checked_shr(8 * (16 - len) as u32).unwrap_or(0);
            u128::from_le_bytes(chunk.try_into().ok()?) & mask
        }
        None => name_word(hay, 0, len),
    };
    candidates
        .iter()
        .take_while(|&&n| n != u8::MAX)
        .copied()
        .find(|&n| NAMES[n as usize] == word)
}

/// The header as inspector writes it, in its order, up to and including
/// `kind`: straight-line code for the fields every event has, without
/// looking up a prediction or dispatching on a field number per field.
/// `None` at the first difference; the caller then starts over.
#[inline(always)]
fn header<'a>(s: &mut Scanner<'a>, f: &mut Flat<'a>) -> Option<()> {
    macro_rules! fields {
        ($first:ident $(, $name:ident)*) => {
            field!($first);
            $(
                if s.b.get(s.i) != Some(&b',') {
                    return None;
                }
                s.i += 1;
                field!($name);
            )*
        };
    }
    macro_rules! field {
        ($name:ident) => {
            if !starts_with_key(&s.b[s.i..], Field::$name as usize) {
                return None;
            }
            s.i += KEYS[Field::$name as usize].len();
            f.$name = Scan::scan(s)?;
        };
    }
    fields!(
        v, ktime_ns, time, tgid, tid, ptgid, nspid, comm, start_ns, cgroup_id, pidns, mntns, kind
    );
    Some(())
}

/// Reads `line` into `f`; `None` when the line is not of the expected shape.
/// With `lean_threads`, a thread's creation stops after its header: timelines
/// only count it.
pub(super) fn flat<'a>(
    line: &'a str,
    predictor: &mut Predictor,
    f: &mut Flat<'a>,
    lean_threads: bool,
) -> Option<()> {
    let mut s = Scanner {
        s: line,
        b: line.as_bytes(),
        i: 0,
    };
    s.eat(b'{')?;
    if s.eat(b'}').is_some() {
        return Some(());
    }
    // The slot before the first field is the last one of the table.
    let mut prev = KEYS.len();
    let mut slot = 0;
    // Fields read so far, by number: whether the header is whole.
    let mut seen = 0u128;
    let first = s.i;
    if header(&mut s, f).is_some() {
        prev = Field::kind as usize;
        seen = HEADER | bit(Field::kind);
        slot = kind_slot(&f.kind);
        if lean_threads && slot == FORK_SLOT && THREAD.find(&s.b[s.i..]).is_some() {
            f.thread = true;
            return Some(());
        }
        if s.eat(b'}').is_some() {
            s.ws();
            return (s.i == s.b.len()).then_some(());
        }
        s.eat(b',')?;
    } else {
        // Another order, or something unexpected: field by field.
        s.i = first;
    }
    loop {
        let guess = predictor.next[slot][prev] as usize;
        let field_no = match KEYS.get(guess) {
            Some(key) if starts_with_key(&s.b[s.i..], guess) => {
                s.i += key.len();
                Some(guess as u8)
            }
            _ => {
                let key = s.key()?;
                // Past its closing quote: the key's bytes are just before.
                let at = s.i - 1 - key.len();
                s.eat(b':')?;
                let found = field(&s.b[at..], key.len());
                if let Some(n) = found {
                    predictor.next[slot][prev] = n;
                }
                found
            }
        };
        if let Some(n) = field_no {
            prev = n as usize;
            seen |= 1u128 << n;
        }
        if s.peek() == Some(b'n') {
            // inspector leaves optional fields out rather than writing
            // null: let serde judge anything else.
            return None;
        }
        match field_no {
            Some(n) if n == Field::kind as u8 => {
                f.kind = s.string()?;
                slot = kind_slot(&f.kind);
                // inspector writes `kind` after the header: for a
                // thread, that is all the lean reading keeps.
                if lean_threads
                    && slot == FORK_SLOT
                    && seen & HEADER == HEADER
                    && THREAD.find(&s.b[s.i..]).is_some()
                {
                    f.thread = true;
                    return Some(());
                }
            }
            Some(n) => f.read(n, &mut s)?,
            None => s.skip()?,
        }
        if s.eat(b'}').is_some() {
            s.ws();
            return (s.i == s.b.len()).then_some(());
        }
        s.eat(b',')?;
    }
}
