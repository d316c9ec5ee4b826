//! What a policy component's bytes say about how it was built: its size
//! against the ConfigMap's limit, the stack it was linked with, whether it
//! carries debug information, and what it imports (WASI only when it links
//! Rust's standard library). `policy check` reports these and warns when
//! a build missed the release profile or the stack flag.
//!
//! wasm-ld (the linker of `wasm32-wasip2`) keeps the stack pointer in the
//! module's first global, initialised to the top of the stack, and the
//! Rust targets link with `--stack-first`, so the stack spans
//! `0..__stack_pointer` and the data segments follow it: that size is
//! exact. A linker without `--stack-first` puts the stack after the data;
//! then the figure is the stack pointer's start minus the end of the
//! initialised data, an upper bound (zeroed data has no segment).

use wasmparser::{ConstExpr, DataKind, Encoding, Operator, Parser, Payload};

/// A ConfigMap holds at most 1 MiB of data in all (the API server refuses
/// more), and every policy of a set shares it.
pub const CONFIGMAP_LIMIT_BYTES: usize = 1 << 20;
/// Size above which `policy check` warns: a quarter of the ConfigMap.
pub const LARGE_COMPONENT_BYTES: usize = CONFIGMAP_LIMIT_BYTES / 4;
/// Stack above which `policy check` warns; the template links 64 KiB.
pub const LARGE_STACK_BYTES: u64 = 64 << 10;

/// Facts read from a component's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentFacts {
    /// The component's size in bytes.
    pub size_bytes: usize,
    /// The linked stack of the main core module, when it could be read.
    pub stack_bytes: Option<u64>,
    /// Whether a core module carries DWARF or a name section (not stripped).
    pub debug_info: bool,
    /// The component's own imports, e.g. `svc-lb:policy/host@0.2.0`.
    pub imports: Vec<String>,
}

impl ComponentFacts {
    /// Whether the component imports WASI: what the standard library
    /// brings (stderr for its panics, clocks, random). A `#![no_std]`
    /// policy imports the contract's interfaces only.
    pub fn imports_wasi(&self) -> bool {
        self.imports.iter().any(|name| name.starts_with("wasi:"))
    }
}

/// A component the parser could not read.
#[derive(Debug, thiserror::Error)]
#[error("not a readable WebAssembly binary: {0}")]
pub struct InspectError(String);

/// Reads the facts of `bytes`.
pub fn inspect_component(bytes: &[u8]) -> Result<ComponentFacts, InspectError> {
    let mut modules: Vec<ModuleFacts> = Vec::new();
    let mut debug_info = false;
    let mut imports = Vec::new();
    // Nesting of modules and components: each one's sections arrive between
    // its `Version` and its `End`.
    let mut in_module: Vec<bool> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                in_module.push(encoding == Encoding::Module);
                if encoding == Encoding::Module {
                    modules.push(ModuleFacts::default());
                }
            }
            Payload::End(_) => {
                in_module.pop();
            }
            Payload::CodeSectionStart { size, .. } => {
                if let Some(module) = current(&in_module, &mut modules) {
                    module.code_bytes = size;
                }
            }
            Payload::GlobalSection(reader) => {
                if let (Some(module), Some(global)) =
                    (current(&in_module, &mut modules), reader.into_iter().next())
                {
                    let global = global.map_err(|e| InspectError(e.to_string()))?;
                    if global.ty.mutable {
                        module.stack_pointer = i32_constant(&global.init_expr).map(u64::from);
                    }
                }
            }
            Payload::DataSection(reader) => {
                if let Some(module) = current(&in_module, &mut modules) {
                    for data in reader {
                        let data = data.map_err(|e| InspectError(e.to_string()))?;
                        if let DataKind::Active { offset_expr, .. } = data.kind
                            && let Some(start) = i32_constant(&offset_expr)
                        {
                            let start = u64::from(start);
                            let end = start + data.data.len() as u64;
                            module.data_start =
                                Some(module.data_start.map_or(start, |s| s.min(start)));
                            module.data_end = module.data_end.max(end);
                        }
                    }
                }
            }
            // The outer component's imports (nested components, such as
            // WASI adapters, import from it).
            Payload::ComponentImportSection(reader) if in_module.len() == 1 => {
                for import in reader {
                    let import = import.map_err(|e| InspectError(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::CustomSection(section)
                if in_module.last() == Some(&true)
                    && (section.name() == "name" || section.name().starts_with(".debug_")) =>
            {
                debug_info = true;
            }
            _ => {}
        }
    }
    let main = modules.iter().max_by_key(|m| m.code_bytes);
    Ok(ComponentFacts {
        size_bytes: bytes.len(),
        stack_bytes: main.and_then(ModuleFacts::stack_bytes),
        debug_info,
        imports,
    })
}

#[derive(Debug, Default)]
struct ModuleFacts {
    code_bytes: u32,
    stack_pointer: Option<u64>,
    data_start: Option<u64>,
    data_end: u64,
}

impl ModuleFacts {
    fn stack_bytes(&self) -> Option<u64> {
        let top = self.stack_pointer?;
        match self.data_start {
            // `--stack-first`: the stack lies below the data.
            Some(start) if start >= top => Some(top),
            None => Some(top),
            // Stack after the data.
            Some(_) => top.checked_sub(self.data_end),
        }
    }
}

fn current<'a>(in_module: &[bool], modules: &'a mut [ModuleFacts]) -> Option<&'a mut ModuleFacts> {
    match in_module.last() {
        Some(true) => modules.last_mut(),
        _ => None,
    }
}

/// The value of a constant expression that is a single `i32.const`.
fn i32_constant(expr: &ConstExpr<'_>) -> Option<u32> {
    let mut ops = expr.get_operators_reader();
    match ops.read().ok()? {
        Operator::I32Const { value } => Some(value as u32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_default_policy_is_stripped_with_a_64_kib_stack() {
        let facts = inspect_component(crate::policy::DEFAULT_POLICY_WASM).unwrap();
        assert_eq!(facts.stack_bytes, Some(64 << 10));
        assert!(!facts.debug_info);
        assert_eq!(facts.size_bytes, crate::policy::DEFAULT_POLICY_WASM.len());
    }

    #[test]
    fn the_bundled_default_policy_is_no_std_importing_only_the_contract() {
        let facts = inspect_component(crate::policy::DEFAULT_POLICY_WASM).unwrap();
        assert!(!facts.imports.is_empty());
        assert!(
            facts
                .imports
                .iter()
                .all(|name| name.starts_with("svc-lb:policy/")),
            "{:?}",
            facts.imports
        );
        assert!(!facts.imports_wasi());
    }

    /// A core module with a mutable i32 global (the stack pointer) set to
    /// `stack_pointer`, one data segment at `data_at`, and a name section.
    fn module(stack_pointer: i32, data_at: i32, named: bool) -> Vec<u8> {
        fn sleb(mut v: i64, out: &mut Vec<u8>) {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
                out.push(if done { byte } else { byte | 0x80 });
                if done {
                    break;
                }
            }
        }
        fn section(id: u8, body: Vec<u8>, out: &mut Vec<u8>) {
            out.push(id);
            out.push(body.len() as u8);
            out.extend(body);
        }
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        let mut global = vec![1, 0x7f, 1, 0x41];
        sleb(stack_pointer.into(), &mut global);
        global.push(0x0b);
        section(6, global, &mut bytes);
        let mut data = vec![1, 0, 0x41];
        sleb(data_at.into(), &mut data);
        data.extend([0x0b, 4, 1, 2, 3, 4]);
        section(11, data, &mut bytes);
        if named {
            section(0, b"\x04name\x00".to_vec(), &mut bytes);
        }
        bytes
    }

    #[test]
    fn the_stack_is_read_in_both_layouts() {
        // --stack-first: 1 MiB of stack, the data above it.
        let facts = inspect_component(&module(1 << 20, 1 << 20, false)).unwrap();
        assert_eq!(facts.stack_bytes, Some(1 << 20));
        assert!(!facts.debug_info);
        // The stack after the data (at 1024..1028): its top minus the data's end.
        let facts = inspect_component(&module(1028 + (64 << 10), 1024, true)).unwrap();
        assert_eq!(facts.stack_bytes, Some(64 << 10));
        assert!(facts.debug_info);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(inspect_component(b"not wasm").is_err());
    }
}
