//! A fast reader for recorded events. `Event`'s own `Deserialize` goes through
//! serde's buffering for flattened, internally tagged enums, which costs
//! microseconds an event, and the timeline of a long recording is bound by
//! parsing. A scanner that knows the flat shape inspector writes fills one
//! struct of borrowed strings instead; anything it does not expect goes through
//! serde_json, which also reports what is wrong.

use std::borrow::Cow;

use serde::Deserialize;

use compact_str::CompactString;

use crate::event::{Body, CgroupChange, Event, SyscallResult, Task};

/// Every field any event kind has, by name (docs/events.md).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Flat<'a> {
    v: u32,
    ktime_ns: u64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    tgid: Option<u32>,
    tid: u32,
    ptgid: u32,
    nspid: u32,
    #[serde(borrow)]
    comm: Cow<'a, str>,
    start_ns: u64,
    cgroup_id: u64,
    pidns: u32,
    mntns: u32,

    child_tgid: u32,
    child_tid: u32,
    child_start_ns: u64,
    thread: bool,
    #[serde(borrow)]
    flags: Option<Cow<'a, str>>,
    flags_raw: Option<u64>,

    #[serde(borrow)]
    filename: Cow<'a, str>,
    #[serde(borrow)]
    argv: Vec<Cow<'a, str>>,
    argv_truncated: bool,
    old_tid: Option<u32>,
    ret: i64,
    #[serde(borrow)]
    errno: Option<Cow<'a, str>>,
    duration_ns: Option<u64>,

    exit_code: Option<i32>,
    #[serde(borrow)]
    signal: Option<Cow<'a, str>>,
    core_dumped: bool,
    status: u32,

    fd: i32,
    #[serde(borrow)]
    nstype: Cow<'a, str>,
    nstype_raw: u64,
    ns_inode: Option<u64>,

    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    fstype: Option<Cow<'a, str>>,
    #[serde(borrow)]
    new_root: Cow<'a, str>,
    #[serde(borrow)]
    put_old: Cow<'a, str>,
    #[serde(borrow)]
    cwd: Option<Cow<'a, str>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,

    hierarchy_id: u32,
    #[serde(borrow)]
    hierarchy: Cow<'a, str>,
    level: u32,
    id: u64,
    task_tgid: u32,
    task_tid: u32,
    threadgroup: bool,
    #[serde(borrow)]
    file: Cow<'a, str>,
    cgroup_version: u8,
    #[serde(borrow)]
    value: Cow<'a, str>,
    value_truncated: bool,

    count: u64,
    total: u64,
}

fn own(s: Cow<'_, str>) -> String {
    s.into_owned()
}

fn own_opt(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// Parses one JSON Lines record, with its `time`.
#[cfg(test)]
fn parse_event(line: &str) -> Result<Option<Event>, serde_json::Error> {
    parse(line, true, &mut Predictor::default())
}

pub use scan::Predictor;

/// Parses one JSON Lines record. `Ok(None)`: a kind this version does not know
/// (newer recordings may have more), skipped. Without `time` (left empty) when
/// `with_time` is false: a reader that needs one wall-clock time in the stream
/// saves copying the rest.
pub fn parse(
    line: &str,
    with_time: bool,
    predictor: &mut Predictor,
) -> Result<Option<Event>, serde_json::Error> {
    // Filled in place: returning a struct this size is a copy per event.
    let mut f = Flat::default();
    // A thread's creation is a quarter of a recording; timelines only count
    // it, so the lean reading (without `time`) stops after its header.
    if scan::flat(line, predictor, &mut f, !with_time).is_none() {
        f = serde_json::from_str(line)?;
    }
    if f.kind.is_empty() {
        return Err(serde::de::Error::missing_field("kind"));
    }
    let result = |f: &Flat| SyscallResult {
        ret: f.ret,
        errno: f.errno.as_deref().map(str::to_string),
        duration_ns: f.duration_ns.unwrap_or(0),
    };
    let cgroup = |f: &mut Flat| CgroupChange {
        hierarchy_id: f.hierarchy_id,
        hierarchy: own(std::mem::take(&mut f.hierarchy)),
        path: own(f.path.take().unwrap_or_default()),
        level: f.level,
        id: f.id,
    };
    let body = match f.kind.as_ref() {
        "fork" => Body::Fork {
            child_tgid: f.child_tgid,
            child_tid: f.child_tid,
            child_start_ns: f.child_start_ns,
            thread: f.thread,
            flags: own_opt(f.flags.take()),
            flags_raw: f.flags_raw,
        },
        "exec" => Body::Exec {
            filename: own(std::mem::take(&mut f.filename)),
            argv: f.argv.drain(..).map(own).collect(),
            argv_truncated: f.argv_truncated,
            old_tid: f.old_tid,
            ret: f.ret,
            errno: own_opt(f.errno.take()),
        },
        "exit" => Body::Exit {
            exit_code: f.exit_code,
            signal: own_opt(f.signal.take()),
            core_dumped: f.core_dumped,
            status: f.status,
        },
        "clone" => Body::Clone {
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "unshare" => Body::Unshare {
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "setns" => Body::Setns {
            fd: f.fd,
            nstype: own(std::mem::take(&mut f.nstype)),
            nstype_raw: f.nstype_raw,
            ns_inode: f.ns_inode,
            result: result(&f),
        },
        "mount" => Body::Mount {
            source: own_opt(f.source.take()),
            target: own(std::mem::take(&mut f.target)),
            fstype: own_opt(f.fstype.take()),
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "umount" => Body::Umount {
            target: own(std::mem::take(&mut f.target)),
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "pivot_root" => Body::PivotRoot {
            new_root: own(std::mem::take(&mut f.new_root)),
            put_old: own(std::mem::take(&mut f.put_old)),
            cwd: own_opt(f.cwd.take()),
            result: result(&f),
        },
        "chroot" => Body::Chroot {
            path: own_opt(f.path.take()).unwrap_or_default(),
            result: result(&f),
        },
        "chdir" => Body::Chdir {
            path: own_opt(f.path.take()).unwrap_or_default(),
            result: result(&f),
        },
        "fchdir" => Body::Fchdir {
            fd: f.fd,
            path: own_opt(f.path.take()),
            result: result(&f),
        },
        "cgroup_mkdir" => Body::CgroupMkdir(cgroup(&mut f)),
        "cgroup_rmdir" => Body::CgroupRmdir(cgroup(&mut f)),
        "cgroup_attach" => Body::CgroupAttach {
            cgroup: cgroup(&mut f),
            task_tgid: f.task_tgid,
            task_tid: f.task_tid,
            threadgroup: f.threadgroup,
        },
        "cgroup_write" => Body::CgroupWrite {
            file: own(std::mem::take(&mut f.file)),
            hierarchy: own(std::mem::take(&mut f.hierarchy)),
            path: own_opt(f.path.take()),
            cgroup_version: f.cgroup_version,
            value: own(std::mem::take(&mut f.value)),
            value_truncated: f.value_truncated,
            fd: f.fd,
            result: f.duration_ns.map(|_| result(&f)),
        },
        "lost" => Body::Lost {
            count: f.count,
            total: f.total,
        },
        _ => return Ok(None),
    };
    let task = f.tgid.map(|tgid| Task {
        tgid,
        tid: f.tid,
        ptgid: f.ptgid,
        nspid: f.nspid,
        comm: CompactString::from(f.comm.as_ref()),
        start_ns: f.start_ns,
        cgroup_id: f.cgroup_id,
        pidns: f.pidns,
        mntns: f.mntns,
    });
    Ok(Some(Event {
        v: f.v,
        ktime_ns: f.ktime_ns,
        time: if with_time {
            own(f.time)
        } else {
            String::new()
        },
        task,
        body,
    }))
}

/// A scanner for one flat JSON object of inspector's event schema: numbers,
/// booleans, strings and arrays of strings; values of keys it does not know
/// are skipped, nested or not.
mod scan {
    use std::borrow::Cow;

    use super::Flat;

    struct Scanner<'a> {
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
        fn skip(&mut self) -> Option<()> {
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

    /// Whether the eight bytes of `v` (little-endian) are all ASCII digits.
    #[inline(always)]
    fn eight_digits(v: u64) -> bool {
        const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
        (v & HIGH) | (((v.wrapping_add(0x0606_0606_0606_0606)) & HIGH) >> 4)
            == 0x3333_3333_3333_3333
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

    #[inline(always)]
    fn u32v(s: &mut Scanner) -> Option<u32> {
        s.uint()?.try_into().ok()
    }

    #[inline(always)]
    fn i32v(s: &mut Scanner) -> Option<i32> {
        s.int()?.try_into().ok()
    }

    /// Every key, quoted and followed by its colon, by field number.
    const KEYS: [&[u8]; 54] = [
        b"\"v\":",
        b"\"ktime_ns\":",
        b"\"time\":",
        b"\"kind\":",
        b"\"tgid\":",
        b"\"tid\":",
        b"\"ptgid\":",
        b"\"nspid\":",
        b"\"comm\":",
        b"\"start_ns\":",
        b"\"cgroup_id\":",
        b"\"pidns\":",
        b"\"mntns\":",
        b"\"child_tgid\":",
        b"\"child_tid\":",
        b"\"child_start_ns\":",
        b"\"thread\":",
        b"\"flags\":",
        b"\"flags_raw\":",
        b"\"filename\":",
        b"\"argv\":",
        b"\"argv_truncated\":",
        b"\"old_tid\":",
        b"\"ret\":",
        b"\"errno\":",
        b"\"duration_ns\":",
        b"\"exit_code\":",
        b"\"signal\":",
        b"\"core_dumped\":",
        b"\"status\":",
        b"\"fd\":",
        b"\"nstype\":",
        b"\"nstype_raw\":",
        b"\"ns_inode\":",
        b"\"source\":",
        b"\"target\":",
        b"\"fstype\":",
        b"\"new_root\":",
        b"\"put_old\":",
        b"\"cwd\":",
        b"\"path\":",
        b"\"hierarchy_id\":",
        b"\"hierarchy\":",
        b"\"level\":",
        b"\"id\":",
        b"\"task_tgid\":",
        b"\"task_tid\":",
        b"\"threadgroup\":",
        b"\"file\":",
        b"\"cgroup_version\":",
        b"\"value\":",
        b"\"value_truncated\":",
        b"\"count\":",
        b"\"total\":",
    ];

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
    /// The header's fields (numbers 0 to 12 but `kind`'s, 3).
    const HEADER: u64 = 0b1_1111_1111_0111;

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
            _ => KINDS - 1,
        }
    }

    /// The field a key names, by length first: 55 string comparisons in a
    /// row would cost more than the rest of the line.
    fn field(key: &str) -> Option<u8> {
        Some(match key.len() {
            1 => match key {
                "v" => 0,
                _ => return None,
            },
            2 => match key {
                "fd" => 30,
                "id" => 44,
                _ => return None,
            },
            3 => match key {
                "tid" => 5,
                "ret" => 23,
                "cwd" => 39,
                _ => return None,
            },
            4 => match key {
                "time" => 2,
                "kind" => 3,
                "tgid" => 4,
                "comm" => 8,
                "argv" => 20,
                "path" => 40,
                "file" => 48,
                _ => return None,
            },
            5 => match key {
                "ptgid" => 6,
                "nspid" => 7,
                "pidns" => 11,
                "mntns" => 12,
                "flags" => 17,
                "errno" => 24,
                "level" => 43,
                "value" => 50,
                "count" => 52,
                "total" => 53,
                _ => return None,
            },
            6 => match key {
                "thread" => 16,
                "signal" => 27,
                "status" => 29,
                "nstype" => 31,
                "source" => 34,
                "target" => 35,
                "fstype" => 36,
                _ => return None,
            },
            7 => match key {
                "old_tid" => 22,
                "put_old" => 38,
                _ => return None,
            },
            8 => match key {
                "ktime_ns" => 1,
                "start_ns" => 9,
                "filename" => 19,
                "ns_inode" => 33,
                "new_root" => 37,
                "task_tid" => 46,
                _ => return None,
            },
            9 => match key {
                "cgroup_id" => 10,
                "child_tid" => 14,
                "flags_raw" => 18,
                "exit_code" => 26,
                "hierarchy" => 42,
                "task_tgid" => 45,
                _ => return None,
            },
            10 => match key {
                "child_tgid" => 13,
                "nstype_raw" => 32,
                _ => return None,
            },
            11 => match key {
                "duration_ns" => 25,
                "core_dumped" => 28,
                "threadgroup" => 47,
                _ => return None,
            },
            12 => match key {
                "hierarchy_id" => 41,
                _ => return None,
            },
            14 => match key {
                "child_start_ns" => 15,
                "argv_truncated" => 21,
                "cgroup_version" => 49,
                _ => return None,
            },
            15 => match key {
                "value_truncated" => 51,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The header as inspector writes it, in its order, up to and including
    /// `kind`: straight-line code for the fields every event has, without
    /// looking up a prediction or dispatching on a field number per field.
    /// `None` at the first difference; the caller then starts over.
    #[inline(always)]
    fn header<'a>(s: &mut Scanner<'a>, f: &mut Flat<'a>) -> Option<()> {
        macro_rules! field {
            ($n:expr, $read:expr) => {
                if !starts_with_key(&s.b[s.i..], $n) {
                    return None;
                }
                s.i += KEYS[$n].len();
                $read;
            };
        }
        macro_rules! comma {
            () => {
                if s.b.get(s.i) != Some(&b',') {
                    return None;
                }
                s.i += 1;
            };
        }
        field!(0, f.v = u32v(s)?);
        comma!();
        field!(1, f.ktime_ns = s.uint()?);
        comma!();
        field!(2, f.time = s.string()?);
        comma!();
        field!(4, f.tgid = Some(u32v(s)?));
        comma!();
        field!(5, f.tid = u32v(s)?);
        comma!();
        field!(6, f.ptgid = u32v(s)?);
        comma!();
        field!(7, f.nspid = u32v(s)?);
        comma!();
        field!(8, f.comm = s.string()?);
        comma!();
        field!(9, f.start_ns = s.uint()?);
        comma!();
        field!(10, f.cgroup_id = s.uint()?);
        comma!();
        field!(11, f.pidns = u32v(s)?);
        comma!();
        field!(12, f.mntns = u32v(s)?);
        comma!();
        field!(3, f.kind = s.string()?);
        Some(())
    }

    /// `None` when the line is not of the expected shape.
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
        let mut seen = 0u64;
        let first = s.i;
        if header(&mut s, f).is_some() {
            prev = 3;
            seen = HEADER | 1 << 3;
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
                    s.eat(b':')?;
                    let found = field(key);
                    if let Some(n) = found {
                        predictor.next[slot][prev] = n;
                    }
                    found
                }
            };
            if let Some(n) = field_no {
                prev = n as usize;
                seen |= 1u64 << n;
            }
            if s.peek() == Some(b'n') {
                // inspector leaves optional fields out rather than writing
                // null: let serde judge anything else.
                return None;
            }
            match field_no {
                Some(0) => f.v = u32v(&mut s)?,    // v
                Some(1) => f.ktime_ns = s.uint()?, // ktime_ns
                Some(2) => f.time = s.string()?,   // time
                Some(3) => {
                    // kind
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
                Some(4) => f.tgid = Some(u32v(&mut s)?), // tgid
                Some(5) => f.tid = u32v(&mut s)?,        // tid
                Some(6) => f.ptgid = u32v(&mut s)?,      // ptgid
                Some(7) => f.nspid = u32v(&mut s)?,      // nspid
                Some(8) => f.comm = s.string()?,         // comm
                Some(9) => f.start_ns = s.uint()?,       // start_ns
                Some(10) => f.cgroup_id = s.uint()?,     // cgroup_id
                Some(11) => f.pidns = u32v(&mut s)?,     // pidns
                Some(12) => f.mntns = u32v(&mut s)?,     // mntns
                Some(13) => f.child_tgid = u32v(&mut s)?, // child_tgid
                Some(14) => f.child_tid = u32v(&mut s)?, // child_tid
                Some(15) => f.child_start_ns = s.uint()?, // child_start_ns
                Some(16) => f.thread = s.boolean()?,     // thread
                Some(17) => f.flags = Some(s.string()?), // flags
                Some(18) => f.flags_raw = Some(s.uint()?), // flags_raw
                Some(19) => f.filename = s.string()?,    // filename
                Some(20) => f.argv = s.strings()?,       // argv
                Some(21) => f.argv_truncated = s.boolean()?, // argv_truncated
                Some(22) => f.old_tid = Some(u32v(&mut s)?), // old_tid
                Some(23) => f.ret = s.int()?,            // ret
                Some(24) => f.errno = Some(s.string()?), // errno
                Some(25) => f.duration_ns = Some(s.uint()?), // duration_ns
                Some(26) => f.exit_code = Some(i32v(&mut s)?), // exit_code
                Some(27) => f.signal = Some(s.string()?), // signal
                Some(28) => f.core_dumped = s.boolean()?, // core_dumped
                Some(29) => f.status = u32v(&mut s)?,    // status
                Some(30) => f.fd = i32v(&mut s)?,        // fd
                Some(31) => f.nstype = s.string()?,      // nstype
                Some(32) => f.nstype_raw = s.uint()?,    // nstype_raw
                Some(33) => f.ns_inode = Some(s.uint()?), // ns_inode
                Some(34) => f.source = Some(s.string()?), // source
                Some(35) => f.target = s.string()?,      // target
                Some(36) => f.fstype = Some(s.string()?), // fstype
                Some(37) => f.new_root = s.string()?,    // new_root
                Some(38) => f.put_old = s.string()?,     // put_old
                Some(39) => f.cwd = Some(s.string()?),   // cwd
                Some(40) => f.path = Some(s.string()?),  // path
                Some(41) => f.hierarchy_id = u32v(&mut s)?, // hierarchy_id
                Some(42) => f.hierarchy = s.string()?,   // hierarchy
                Some(43) => f.level = u32v(&mut s)?,     // level
                Some(44) => f.id = s.uint()?,            // id
                Some(45) => f.task_tgid = u32v(&mut s)?, // task_tgid
                Some(46) => f.task_tid = u32v(&mut s)?,  // task_tid
                Some(47) => f.threadgroup = s.boolean()?, // threadgroup
                Some(48) => f.file = s.string()?,        // file
                Some(49) => f.cgroup_version = s.uint()?.try_into().ok()?, // cgroup_version
                Some(50) => f.value = s.string()?,       // value
                Some(51) => f.value_truncated = s.boolean()?, // value_truncated
                Some(52) => f.count = s.uint()?,         // count
                Some(53) => f.total = s.uint()?,         // total
                _ => s.skip()?,
            }
            if s.eat(b'}').is_some() {
                s.ws();
                return (s.i == s.b.len()).then_some(());
            }
            s.eat(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: [&str; 2] = [
        include_str!("../../tests/fixtures/docker-run-rm-true.jsonl"),
        include_str!("../../tests/fixtures/runc-run-exit-3.jsonl"),
    ];

    /// The fast reader and `Event`'s own `Deserialize` agree on every line of
    /// real recordings, and the scanner takes every one of them.
    #[test]
    fn agrees_with_the_schema_on_real_recordings() {
        for fixture in FIXTURES {
            for line in fixture.lines() {
                assert!(
                    scan::flat(line, &mut Predictor::default(), &mut Flat::default(), false)
                        .is_some(),
                    "the scanner gave up on {line}"
                );
                let slow: Event = serde_json::from_str(line).unwrap();
                let fast = parse_event(line).unwrap().expect("a known kind");
                assert_eq!(fast, slow, "{line}");
            }
        }
    }

    #[test]
    fn escapes_unicode_and_unknown_nested_values() {
        let line = r#"{"v":1,"ktime_ns":2,"time":"t","kind":"exec","tgid":3,"tid":3,"ptgid":1,"nspid":3,"comm":"c","start_ns":0,"cgroup_id":0,"pidns":0,"mntns":0,"filename":"/a\"b\\c\u00e9\ud83d\ude00","argv":["x\ny",""],"argv_truncated":false,"ret":0,"future":{"a":[1,{"b":"]"}]}}"#;
        let fast = parse_event(line).unwrap().unwrap();
        let slow: Event = serde_json::from_str(line).unwrap();
        assert_eq!(fast, slow);
        match fast.body {
            Body::Exec { filename, argv, .. } => {
                assert_eq!(filename, "/a\"b\\c\u{e9}\u{1f600}");
                assert_eq!(argv, ["x\ny", ""]);
            }
            other => panic!("{other:?}"),
        }
        // A cut line, or anything after the object, is not the scanner's to take.
        let p = &mut Predictor::default();
        assert!(scan::flat(&line[..line.len() - 1], p, &mut Flat::default(), false).is_none());
        assert!(scan::flat(&format!("{line} x"), p, &mut Flat::default(), false).is_none());
    }

    #[test]
    fn numbers_of_every_length_read_exactly() {
        // Eight digits are read at once: cover the lengths around each chunk.
        let mut n: u64 = 0;
        for digits in 1..=20u32 {
            n = n * 10 + u64::from(digits % 10);
            let line = format!(
                r#"{{"v":1,"ktime_ns":{n},"time":"t","tgid":1,"tid":1,"ptgid":0,"nspid":1,"comm":"c","start_ns":{n},"cgroup_id":0,"pidns":0,"mntns":0,"kind":"exit","exit_code":0,"core_dumped":false,"status":0}}"#
            );
            let fast = parse_event(&line);
            let slow = serde_json::from_str::<Event>(&line);
            match (fast, slow) {
                (Ok(Some(fast)), Ok(slow)) => assert_eq!(fast, slow, "{digits} digits"),
                (Err(_), Err(_)) => assert!(digits > 19, "{digits} digits"),
                (fast, slow) => panic!("{digits} digits: {fast:?} vs {slow:?}"),
            }
        }
    }

    #[test]
    fn a_lean_thread_keeps_its_header_in_any_field_order() {
        let written = r#"{"v":1,"ktime_ns":7,"time":"t","tgid":3,"tid":3,"ptgid":1,"nspid":3,"comm":"c","start_ns":2,"cgroup_id":9,"pidns":5,"mntns":6,"kind":"fork","child_tgid":3,"child_tid":4,"child_start_ns":8,"thread":true,"flags":"CLONE_VM","flags_raw":256}"#;
        let sorted =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(written).unwrap())
                .unwrap();
        assert!(sorted.starts_with(r#"{"cgroup_id""#), "{sorted}");
        for line in [written, sorted.as_str()] {
            let e = parse(line, false, &mut Predictor::default())
                .unwrap()
                .unwrap();
            let t = e.task.unwrap();
            assert_eq!(
                (e.ktime_ns, t.tgid, t.tid, t.start_ns, t.mntns),
                (7, 3, 3, 2, 6),
                "{line}"
            );
            assert!(matches!(e.body, Body::Fork { thread: true, .. }), "{line}");
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_and_garbage_is_an_error() {
        assert!(
            parse_event(r#"{"v":1,"ktime_ns":1,"time":"","kind":"from_the_future"}"#)
                .unwrap()
                .is_none()
        );
        assert!(parse_event("{\"v\":").is_err());
        assert!(parse_event(r#"{"v":"one"}"#).is_err());
        assert!(parse_event(r#"{"v":1}"#).is_err(), "no kind");
    }
}
