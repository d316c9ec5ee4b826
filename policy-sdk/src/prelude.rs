//! What a `#![no_std]` policy needs from `alloc` in every file, in one
//! import: `use policy_sdk::prelude::*;`.
//!
//! A `#![no_std]` crate has only `core`'s prelude; these are the parts of
//! the standard prelude (and `BTreeMap`) that live in `alloc`, so a policy
//! reads as ordinary Rust. In a crate with the standard library the same
//! import is harmless: the names are the same items.
//!
//! ```
//! #![no_std]
//! use policy_sdk::prelude::*;
//!
//! fn greeting(names: &[&str]) -> String {
//!     let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
//!     format!("hello {}", list.join(", "))
//! }
//! # fn main() {
//! #     assert_eq!(greeting(&["a", "b"]), "hello a, b");
//! # }
//! ```

pub use alloc::borrow::ToOwned;
pub use alloc::boxed::Box;
pub use alloc::collections::BTreeMap;
pub use alloc::string::{String, ToString};
pub use alloc::vec::Vec;
pub use alloc::{format, vec};
