//! Reading a compiled Lua 5.1 chunk (`lua_dump`'s format, ldump.c) to learn whether any of its
//! functions assigns a global.
//!
//! Why: a script's globals are the sandbox's read-only proxy, and every global it reads (`KEYS`,
//! `ARGV`, `redis`, `tonumber`) first misses on the empty proxy and then takes its `__index`.
//! A script whose code never assigns a global (no `SETGLOBAL` instruction in the chunk or in
//! any function it defines) cannot write to its environment at all: the sandbox has no
//! `getfenv`, `setfenv` or `debug`, and `_G` is the proxy. Such a script may read the real
//! global table directly (see [`super::sandbox::compile_script`]); reading a missing global
//! still fails as before, through the real table's own `__index`.
//!
//! The reader is conservative: anything it does not recognise (another header, a truncated
//! chunk) answers "assigns", and the script keeps the proxy.

/// `lua_dump`'s header for Lua 5.1 on this machine: signature, version 5.1, official format,
/// little endian, 4-byte int, 8-byte size_t, 4-byte instruction, 8-byte floating-point number.
const HEADER: [u8; 12] = [0x1b, b'L', b'u', b'a', 0x51, 0, 1, 4, 8, 4, 8, 0];

/// Lua 5.1's `OP_SETGLOBAL` (lopcodes.h): `Gbl[Kst(Bx)] := R(A)`.
const OP_SETGLOBAL: u32 = 7;

/// The low six bits of an instruction are its opcode (lopcodes.h's `SIZE_OP`).
const OPCODE_MASK: u32 = 0x3f;

/// Nesting of function definitions the reader follows (Lua's parser stops at 200 levels of C
/// calls, well below); deeper answers "assigns".
const DEPTH_MAX: usize = 256;

/// True unless `chunk` (a `lua_dump` of a Lua 5.1 function) is known to assign no global, in
/// itself or in any function it defines.
pub fn assigns_globals(chunk: &[u8]) -> bool {
    if !cfg!(target_endian = "little") || !chunk.starts_with(&HEADER) {
        return true;
    }
    let mut reader = Reader {
        bytes: chunk,
        position: HEADER.len(),
    };
    !matches!(reader.function(0), Some(false))
}

/// A cursor over the chunk.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let end = self.position.checked_add(len)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    fn int(&mut self) -> Option<usize> {
        let bytes = self.take(4)?;
        let value = i32::from_le_bytes(bytes.try_into().ok()?);
        usize::try_from(value).ok()
    }

    fn string(&mut self) -> Option<()> {
        let bytes = self.take(8)?;
        let len = usize::try_from(u64::from_le_bytes(bytes.try_into().ok()?)).ok()?;
        self.take(len).map(|_| ())
    }

    /// Reads one function (ldump.c's `DumpFunction`); `Some(true)` when it or a function it
    /// defines has a `SETGLOBAL`.
    fn function(&mut self, depth: usize) -> Option<bool> {
        if depth > DEPTH_MAX {
            return None;
        }
        self.string()?; // source
        self.take(4 + 4 + 4)?; // linedefined, lastlinedefined, nups/numparams/is_vararg/maxstacksize
        let code_len = self.int()?;
        let code = self.take(code_len.checked_mul(4)?)?;
        let mut assigns = code.chunks_exact(4).any(|word| {
            let instruction = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            instruction & OPCODE_MASK == OP_SETGLOBAL
        });
        let constant_count = self.int()?;
        for _ in 0..constant_count {
            match self.take(1)?[0] {
                0 => {}                         // nil
                1 => self.take(1).map(|_| ())?, // boolean
                3 => self.take(8).map(|_| ())?, // number
                4 => self.string()?,            // string
                _ => return None,
            }
        }
        let function_count = self.int()?;
        for _ in 0..function_count {
            assigns |= self.function(depth + 1)?;
        }
        let line_count = self.int()?;
        self.take(line_count.checked_mul(4)?)?;
        let local_count = self.int()?;
        for _ in 0..local_count {
            self.string()?;
            self.take(8)?;
        }
        let upvalue_count = self.int()?;
        for _ in 0..upvalue_count {
            self.string()?;
        }
        Some(assigns)
    }
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    #[test]
    fn finds_global_assignments() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "reads only",
                "local x = tonumber(ARGV[1]) return redis.call('GET', KEYS[1])",
                false,
            ),
            (
                "flash sale",
                include_str!("../../../../examples/flash_sale.lua"),
                false,
            ),
            ("assigns", "x = 1", true),
            ("assigns an existing global", "tonumber = nil", true),
            (
                "in a nested function",
                "local function f() y = 2 end return 1",
                true,
            ),
            (
                "deeply nested",
                "local function f() return function() return function() z = 1 end end end",
                true,
            ),
            (
                "local function",
                "local function f(a) local b = a return b end return f(1)",
                false,
            ),
            (
                "table fields",
                "local t = {} t.x = 1 KEYS[1] = 'a' return t",
                false,
            ),
            (
                "many constants",
                "local t = {1, 2.5, 'a', true, false, nil} return #t",
                false,
            ),
            ("global function", "function g() end", true),
        ];
        let lua = Lua::new();
        for (name, code, expected) in cases {
            let function = lua.load(*code).into_function().expect(name);
            for strip in [false, true] {
                assert_eq!(
                    super::assigns_globals(&function.dump(strip)),
                    *expected,
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        let lua = Lua::new();
        let chunk = lua.load("return 1").into_function().unwrap().dump(false);
        let cases: &[(&str, Vec<u8>)] = &[
            ("empty", Vec::new()),
            ("header only", chunk[..12].to_vec()),
            ("truncated", chunk[..chunk.len() - 1].to_vec()),
            ("another version", {
                let mut other = chunk.clone();
                other[4] = 0x52;
                other
            }),
        ];
        for (name, bytes) in cases {
            assert!(super::assigns_globals(bytes), "{name}");
        }
        assert!(!super::assigns_globals(&chunk), "the chunk itself");
    }
}
