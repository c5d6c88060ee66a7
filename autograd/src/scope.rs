//! Layer scopes: the path of the layer whose forward pass is running (`"block_1.dense"`),
//! kept per thread so that an op's shape panic can name it.
//!
//! A container wraps each child's forward in [`in_scope`]; an op that panics on shapes
//! appends [`scope_suffix`] to its message (`matmul: shapes [4, 3] and [5, 2] are
//! incompatible ... in layer 'block_1.dense'`). Entering a scope clones an `Arc<str>` the
//! container built once (a reference-count increment, no allocation once the stack has
//! grown to the model's depth); the path is formatted only when a panic message is.
//!
//! ```
//! use std::sync::Arc;
//! use tapegrad_autograd::scope::{in_scope, scope_path};
//!
//! let (outer, inner): (Arc<str>, Arc<str>) = ("block_1".into(), "dense".into());
//! let path = in_scope(&outer, || in_scope(&inner, scope_path));
//! assert_eq!(path.as_deref(), Some("block_1.dense"));
//! assert_eq!(scope_path(), None);
//! ```

use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static SCOPES: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// Pops the scope it pushed, also when the forward pass unwinds.
struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        SCOPES.with(|s| s.borrow_mut().pop());
    }
}

/// Runs `f` inside the scope `name` (one segment of the layer path; nested calls join their
/// segments with dots).
pub fn in_scope<R>(name: &Arc<str>, f: impl FnOnce() -> R) -> R {
    SCOPES.with(|s| s.borrow_mut().push(Arc::clone(name)));
    let _leave = Leave;
    f()
}

/// The current layer path (`"block_1.dense"`), or `None` outside every scope.
pub fn scope_path() -> Option<String> {
    SCOPES.with(|s| {
        let scopes = s.borrow();
        (!scopes.is_empty()).then(|| scopes.join("."))
    })
}

/// `" in layer 'block_1.dense'"`, or an empty string outside every scope: what a panic
/// message about shapes ends with.
pub fn scope_suffix() -> String {
    scope_path()
        .map(|path| format!(" in layer '{path}'"))
        .unwrap_or_default()
}
