//! Just enough of a BTF reader to find struct field offsets and raw
//! tracepoint prototypes in the running kernel's type information
//! (`/sys/kernel/btf/vmlinux`).
//!
//! The probe is built without CO-RE relocations, so every offset it uses is
//! looked up here at load time instead of being compiled in.
//!
//! Written here rather than taken from aya-obj (which aya already brings):
//! aya-obj keeps its type lookups (`type_by_id`, `resolve_type`,
//! `type_name`) private to itself, and the one it offers,
//! `id_by_type_name_kind`, returns the first type of a name, which in the
//! kernel's BTF can be a forward declaration (an empty copy of the struct,
//! without members). Every read here is bounds-checked: BTF that is cut
//! short or garbled is a [`BtfError::Malformed`], never a panic (a fuzz
//! target, `btf`, feeds it garbage).

use std::{collections::HashMap, path::Path};

use thiserror::Error;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error(
        "cannot read kernel BTF at {path}: {error}; inspector needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    Read {
        path: String,
        // In the message, so not also a source (it would be said twice).
        error: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(String),
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no field {field}")]
    NoField { strukt: String, field: String },
    #[error("kernel BTF: {strukt}.{field} is a bitfield, not addressable")]
    Bitfield { strukt: String, field: String },
}

#[derive(Clone, Copy, Debug)]
struct Type {
    kind: u32,
    name_off: u32,
    vlen: u32,
    kind_flag: bool,
    size_or_type: u32,
    /// Offset of the kind-specific data that follows the type in the type section.
    data: usize,
}

/// Parsed kernel type information.
pub struct Btf {
    data: Vec<u8>,
    str_start: usize,
    str_len: usize,
    /// Index 0 is `void`.
    types: Vec<Type>,
    /// Struct and union type ids by name.
    by_name: HashMap<String, Vec<u32>>,
    /// `btf_trace_<tracepoint>` typedefs by tracepoint name: the prototype
    /// the kernel calls a raw tracepoint's programs with.
    tracepoints: HashMap<String, u32>,
}

/// The typedef the kernel declares for every tracepoint (`include/trace/bpf_probe.h`).
const TRACEPOINT_TYPEDEF: &str = "btf_trace_";

impl Btf {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|error| BtfError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Self::parse(data)
    }

    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(VMLINUX)
    }

    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let bad = |what: &str| BtfError::Malformed(what.to_string());
        if data.len() < 24 {
            return Err(bad("shorter than its header"));
        }
        if read_u16(&data, 0) != Some(MAGIC) {
            return Err(bad("wrong magic (big-endian BTF is not supported)"));
        }
        let header = |o: usize| read_u32(&data, o).map(|v| v as usize);
        let (Some(hdr_len), Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
            (header(4), header(8), header(12), header(16), header(20))
        else {
            return Err(bad("shorter than its header"));
        };
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            let end = start.checked_add(len)?;
            (end <= data.len()).then_some((start, end))
        };
        let (Some((type_start, end)), Some((str_start, _))) =
            (section(type_off, type_len), section(str_off, str_len))
        else {
            return Err(bad("sections extend past the end"));
        };

        let mut types = vec![Type {
            kind: 0,
            name_off: 0,
            vlen: 0,
            kind_flag: false,
            size_or_type: 0,
            data: 0,
        }];
        let mut pos = type_start;
        while pos < end {
            let word = |o: usize| read_u32(&data, pos + o).filter(|_| pos + 12 <= end);
            let (Some(name_off), Some(info), Some(size_or_type)) = (word(0), word(4), word(8))
            else {
                return Err(bad("truncated type"));
            };
            let vlen = info & 0xffff;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                other => return Err(BtfError::Malformed(format!("unknown type kind {other}"))),
            };
            // What follows the type (its members, its parameters) is read
            // later without another check: it must be in the section.
            let next = pos + 12 + extra;
            if next > end {
                return Err(bad("truncated type"));
            }
            types.push(Type {
                kind,
                name_off,
                vlen,
                kind_flag,
                size_or_type,
                data: pos + 12,
            });
            pos = next;
        }

        let mut btf = Btf {
            data,
            str_start,
            str_len,
            types,
            by_name: HashMap::new(),
            tracepoints: HashMap::new(),
        };
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        let mut tracepoints = HashMap::new();
        for (id, t) in btf.types.iter().enumerate() {
            if t.name_off == 0 {
                continue;
            }
            if t.kind == KIND_STRUCT || t.kind == KIND_UNION {
                by_name
                    .entry(btf.name(t.name_off).to_string())
                    .or_default()
                    .push(id as u32);
            } else if t.kind == KIND_TYPEDEF
                && let Some(tp) = btf.name(t.name_off).strip_prefix(TRACEPOINT_TYPEDEF)
            {
                tracepoints.insert(tp.to_string(), id as u32);
            }
        }
        btf.by_name = by_name;
        btf.tracepoints = tracepoints;
        Ok(btf)
    }

    fn name(&self, off: u32) -> &str {
        let start = self.str_start + off as usize;
        if off as usize >= self.str_len {
            return "";
        }
        let bytes = &self.data[start..self.str_start + self.str_len];
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..len]).unwrap_or("")
    }

    fn u32_at(&self, o: usize) -> Result<u32, BtfError> {
        read_u32(&self.data, o).ok_or_else(|| BtfError::Malformed("a member past the end".into()))
    }

    fn ty(&self, id: u32) -> Result<Type, BtfError> {
        self.types
            .get(id as usize)
            .copied()
            .ok_or_else(|| BtfError::Malformed(format!("type id {id} is not in it")))
    }

    /// The members of the struct or union `t`: (name offset, type id, raw
    /// offset word), none for other kinds.
    fn members(&self, t: Type) -> impl Iterator<Item = Result<(u32, u32, u32), BtfError>> + '_ {
        let count = match t.kind {
            KIND_STRUCT | KIND_UNION => t.vlen as usize,
            _ => 0,
        };
        (0..count).map(move |i| {
            let m = t.data + 12 * i;
            Ok((self.u32_at(m)?, self.u32_at(m + 4)?, self.u32_at(m + 8)?))
        })
    }

    /// The struct (or union) named `name` that has members: the kernel's BTF can
    /// also carry empty forward-declared copies.
    fn find_struct(&self, name: &str) -> Result<u32, BtfError> {
        self.by_name
            .get(name)
            .and_then(|ids| {
                ids.iter()
                    .copied()
                    .max_by_key(|&id| self.types.get(id as usize).map_or(0, |t| t.vlen))
            })
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))
    }

    /// Follows typedefs and qualifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            let t = self.ty(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        Ok(id)
    }

    /// Byte offset of `field` in the struct with type id `id`, looking through
    /// anonymous struct and union members as C does, `depth` of them deep.
    fn member_offset_in(
        &self,
        id: u32,
        field: &str,
        strukt: &str,
        depth: u32,
    ) -> Result<Option<u32>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let t = self.ty(id)?;
        for member in self.members(t) {
            let (name_off, mtype, raw) = member?;
            let (bit_off, bitfield) = if t.kind_flag {
                (raw & 0x00ff_ffff, raw >> 24 != 0)
            } else {
                (raw, false)
            };
            if name_off == 0 {
                let inner = self.resolve(mtype)?;
                if let Some(off) = self.member_offset_in(inner, field, strukt, depth + 1)? {
                    return (bit_off / 8).checked_add(off).map(Some).ok_or_else(too_far);
                }
                continue;
            }
            if self.name(name_off) == field {
                if bitfield || bit_off % 8 != 0 {
                    return Err(BtfError::Bitfield {
                        strukt: strukt.to_string(),
                        field: field.to_string(),
                    });
                }
                return Ok(Some(bit_off / 8));
            }
        }
        Ok(None)
    }

    /// Byte offset of a field given as a dotted path from a struct, for example
    /// `member_offset("task_struct", "pid")` or `("mnt_namespace", "ns.inum")`.
    pub fn member_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let mut id = self.find_struct(strukt)?;
        let mut total: u32 = 0;
        let mut current = strukt.to_string();
        for field in path.split('.') {
            let off = self
                .member_offset_in(id, field, &current, 0)?
                .ok_or_else(|| BtfError::NoField {
                    strukt: current.clone(),
                    field: field.to_string(),
                })?;
            total = total.checked_add(off).ok_or_else(too_far)?;
            // Descend into the member's type for the next path element.
            id = self.resolve(self.member_type(id, field, 0)?.unwrap_or(0))?;
            current = format!("{current}.{field}");
        }
        Ok(total)
    }

    fn member_type(&self, id: u32, field: &str, depth: u32) -> Result<Option<u32>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        for member in self.members(self.ty(id)?) {
            let (name_off, mtype, _) = member?;
            if name_off == 0 {
                if let Some(found) = self.member_type(self.resolve(mtype)?, field, depth + 1)? {
                    return Ok(Some(found));
                }
            } else if self.name(name_off) == field {
                return Ok(Some(mtype));
            }
        }
        Ok(None)
    }

    /// How many arguments the kernel passes a raw tracepoint's programs, from
    /// its `btf_trace_<name>` prototype (`void *` data, then the arguments);
    /// `None` when this BTF does not declare it.
    pub fn tracepoint_args(&self, tracepoint: &str) -> Option<u32> {
        let typedef = *self.tracepoints.get(tracepoint)?;
        let ptr = self.ty(self.resolve(typedef).ok()?).ok()?;
        if ptr.kind != KIND_PTR {
            return None;
        }
        let proto = self.ty(self.resolve(ptr.size_or_type).ok()?).ok()?;
        if proto.kind != KIND_FUNC_PROTO {
            return None;
        }
        proto.vlen.checked_sub(1)
    }

    /// Size in bytes of a struct or union.
    /// Does the kernel have this struct (a config option's sign)?
    pub fn has_struct(&self, strukt: &str) -> bool {
        self.find_struct(strukt).is_ok()
    }

    pub fn struct_size(&self, strukt: &str) -> Result<u32, BtfError> {
        let id = self.find_struct(strukt)?;
        Ok(self.ty(id)?.size_or_type)
    }

    /// Number of types, `void` included.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }
}

/// How many typedefs, qualifiers or anonymous members deep a lookup goes:
/// the kernel's types nest a few; more is a loop in garbled BTF.
const MAX_DEPTH: u32 = 32;

fn too_deep() -> BtfError {
    BtfError::Malformed(format!("types nested more than {MAX_DEPTH} deep"))
}

fn too_far() -> BtfError {
    BtfError::Malformed("a member offset past 4 GiB".into())
}

fn read_u16(data: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn read_u32(data: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a BTF blob: `struct outer { int a; union { long b; int c; }; struct inner in; }`
    /// with `struct inner { char pad[3]; int d; }`.
    fn sample() -> Vec<u8> {
        let mut strs = vec![0u8];
        let mut add = |s: &str| {
            let off = strs.len() as u32;
            strs.extend_from_slice(s.as_bytes());
            strs.push(0);
            off
        };
        let n_int = add("int");
        let n_long = add("long");
        let n_outer = add("outer");
        let n_inner = add("inner");
        let (n_a, n_b, n_c, n_d, n_in) = (add("a"), add("b"), add("c"), add("d"), add("in"));
        let mut t = Vec::new();
        let ty = |t: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, size: u32| {
            t.extend_from_slice(&name.to_le_bytes());
            t.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
            t.extend_from_slice(&size.to_le_bytes());
        };
        let member = |t: &mut Vec<u8>, name: u32, typ: u32, bits: u32| {
            for v in [name, typ, bits] {
                t.extend_from_slice(&v.to_le_bytes());
            }
        };
        // 1: int
        ty(&mut t, n_int, KIND_INT, 0, 4);
        t.extend_from_slice(&32u32.to_le_bytes());
        // 2: long
        ty(&mut t, n_long, KIND_INT, 0, 8);
        t.extend_from_slice(&64u32.to_le_bytes());
        // 3: anonymous union { long b; int c; }
        ty(&mut t, 0, KIND_UNION, 2, 8);
        member(&mut t, n_b, 2, 0);
        member(&mut t, n_c, 1, 0);
        // 4: struct inner { int d @ 32 bits }
        ty(&mut t, n_inner, KIND_STRUCT, 1, 8);
        member(&mut t, n_d, 1, 32);
        // 5: struct outer
        ty(&mut t, n_outer, KIND_STRUCT, 3, 24);
        member(&mut t, n_a, 1, 0);
        member(&mut t, 0, 3, 64);
        member(&mut t, n_in, 4, 128);

        blob(&t, &strs)
    }

    /// A BTF blob from its type and string sections.
    fn blob(types: &[u8], strs: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1);
        out.push(0);
        out.extend_from_slice(&24u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strs.len() as u32).to_le_bytes());
        out.extend_from_slice(types);
        out.extend_from_slice(strs);
        out
    }

    /// `typedef void (*btf_trace_<name>)(void *__data, <args> pointers)` for
    /// each (name, args), as the kernel declares its tracepoints.
    pub(crate) fn tracepoints(protos: &[(&str, u32)]) -> Vec<u8> {
        let mut strs = vec![0u8];
        let mut t = Vec::new();
        let word = |t: &mut Vec<u8>, v: u32| t.extend_from_slice(&v.to_le_bytes());
        // 1: void *
        word(&mut t, 0);
        word(&mut t, KIND_PTR << 24);
        word(&mut t, 0);
        let mut next = 2;
        for &(name, args) in protos {
            let proto = next;
            word(&mut t, 0);
            word(&mut t, (KIND_FUNC_PROTO << 24) | (args + 1));
            word(&mut t, 0);
            for _ in 0..=args {
                word(&mut t, 0);
                word(&mut t, 1);
            }
            word(&mut t, 0);
            word(&mut t, KIND_PTR << 24);
            word(&mut t, proto);
            let name_off = strs.len() as u32;
            strs.extend_from_slice(format!("btf_trace_{name}\0").as_bytes());
            word(&mut t, name_off);
            word(&mut t, KIND_TYPEDEF << 24);
            word(&mut t, proto + 1);
            next += 3;
        }
        blob(&t, &strs)
    }

    #[test]
    fn reads_tracepoint_prototypes() {
        let btf = Btf::parse(tracepoints(&[
            ("sched_process_exit", 1),
            ("cgroup_attach_task", 4),
        ]))
        .unwrap();
        assert_eq!(btf.tracepoint_args("sched_process_exit"), Some(1));
        assert_eq!(btf.tracepoint_args("cgroup_attach_task"), Some(4));
        assert_eq!(btf.tracepoint_args("sched_process_fork"), None);
    }

    #[test]
    fn finds_direct_anonymous_and_nested_members() {
        let btf = Btf::parse(sample()).unwrap();
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("outer", "b").unwrap(), 8);
        assert_eq!(btf.member_offset("outer", "c").unwrap(), 8);
        assert_eq!(btf.member_offset("outer", "in.d").unwrap(), 20);
        assert_eq!(btf.struct_size("outer").unwrap(), 24);
    }

    #[test]
    fn names_what_is_missing() {
        let btf = Btf::parse(sample()).unwrap();
        let err = btf.member_offset("outer", "zz").unwrap_err().to_string();
        assert!(err.contains("outer") && err.contains("zz"), "{err}");
        let err = btf.member_offset("nope", "a").unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(vec![0; 10]).is_err());
        let mut blob = sample();
        blob[0] = 0;
        assert!(matches!(Btf::parse(blob), Err(BtfError::Malformed(_))));
    }

    /// Every lookup the probe makes, on whatever `Btf::parse` accepted.
    fn look_up_everything(data: Vec<u8>) {
        let Ok(btf) = Btf::parse(data) else { return };
        for (strukt, path) in [
            ("outer", "a"),
            ("outer", "in.d"),
            ("outer", "c"),
            ("inner", "d"),
        ] {
            let _ = btf.member_offset(strukt, path);
            let _ = btf.struct_size(strukt);
        }
        let _ = btf.tracepoint_args("sched_process_exit");
    }

    #[test]
    fn truncated_or_garbled_btf_is_an_error_not_a_panic() {
        for blob in [sample(), tracepoints(&[("sched_process_exit", 1)])] {
            for len in 0..blob.len() {
                look_up_everything(blob[..len].to_vec());
            }
            // Each byte set to values that make ids, counts and offsets wild.
            for at in 0..blob.len() {
                for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut garbled = blob.clone();
                    garbled[at] = value;
                    look_up_everything(garbled);
                }
            }
        }
        let mut cut = sample();
        cut.truncate(cut.len() - 20);
        assert!(matches!(Btf::parse(cut), Err(BtfError::Malformed(_))));
    }

    #[test]
    fn a_member_that_contains_itself_is_malformed() {
        // 1: struct loop { anonymous member of type 1 }
        let mut t = Vec::new();
        for v in [1u32, (KIND_STRUCT << 24) | 1, 8, 0, 1, 0] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        let btf = Btf::parse(blob(&t, b"\0loop\0")).unwrap();
        let err = btf.member_offset("loop", "x").unwrap_err();
        assert!(matches!(err, BtfError::Malformed(_)), "{err}");
    }

    #[test]
    fn reads_the_running_kernel() {
        if !Path::new(VMLINUX).exists() {
            eprintln!("skipped: no {VMLINUX}");
            return;
        }
        let btf = Btf::from_sys_fs().unwrap();
        assert!(btf.len() > 1000);
        // Every struct the probe reads must resolve.
        crate::probe::offsets::from_btf(&btf).unwrap();
        assert_eq!(btf.tracepoint_args("sched_process_fork"), Some(2));
        assert_eq!(btf.tracepoint_args("cgroup_attach_task"), Some(4));
    }
}
