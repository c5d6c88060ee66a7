//! How a module hands its parameters, buffers and children to its container: the
//! [`Visitor`]s that name them by path, and [`assign_paths`], which gives every parameter
//! and buffer its path as its name.

use std::cell::Cell;

use tapegrad_autograd::{Float, Param};

use super::Module;
use crate::buffer::Buffer;

/// What a [`Visitor`] reports: a parameter, a buffer or a random generator.
pub enum Entry<'a, T: Float> {
    /// A trainable parameter.
    Param(&'a Param<T>),
    /// A non-trainable buffer.
    Buffer(&'a Buffer<T>),
    /// The 64-bit state of a layer's own random generator (a [`Dropout`]'s masks), which a
    /// training snapshot saves and restores so that a resumed run draws the same masks.
    ///
    /// [`Dropout`]: crate::layers::Dropout
    Generator(&'a Cell<u64>),
}

/// What a [`VisitorMut`] reports: a parameter or a buffer.
pub enum EntryMut<'a, T: Float> {
    /// A trainable parameter.
    Param(&'a mut Param<T>),
    /// A non-trainable buffer.
    Buffer(&'a mut Buffer<T>),
}

/// Walks a module's parameters and buffers (see [`Module::visit`]), building each one's path
/// from the names the modules on the way give: `"block_1"` then `"dense"` then `"kernel"`
/// is `"block_1.dense.kernel"`.
pub struct Visitor<'a, 'f, T: Float> {
    path: String,
    /// Whether paths are built (`false`: every entry is reported with an empty path).
    named: bool,
    f: &'f mut dyn FnMut(&str, Entry<'a, T>),
}

impl<'a, 'f, T: Float> Visitor<'a, 'f, T> {
    /// A walk that calls `f` with each parameter's or buffer's path.
    pub fn new(f: &'f mut dyn FnMut(&str, Entry<'a, T>)) -> Self {
        Visitor {
            path: String::new(),
            named: true,
            f,
        }
    }

    /// A walk that calls `f` with each parameter and buffer and an empty path: it builds no
    /// names, so it allocates nothing (what [`Module::params`] uses on every training step).
    pub fn unnamed(f: &'f mut dyn FnMut(&str, Entry<'a, T>)) -> Self {
        Visitor {
            path: String::new(),
            named: false,
            f,
        }
    }

    /// Reports a parameter (`None`, a layer not built yet, is skipped).
    pub fn param(&mut self, name: &str, param: impl Into<Option<&'a Param<T>>>) {
        if let Some(p) = param.into() {
            let len = enter(&mut self.path, self.named, name, "");
            (self.f)(&self.path, Entry::Param(p));
            self.path.truncate(len);
        }
    }

    /// Reports a buffer (`None`, a layer not built yet, is skipped).
    pub fn buffer(&mut self, name: &str, buffer: impl Into<Option<&'a Buffer<T>>>) {
        if let Some(b) = buffer.into() {
            let len = enter(&mut self.path, self.named, name, "");
            (self.f)(&self.path, Entry::Buffer(b));
            self.path.truncate(len);
        }
    }

    /// Reports the state of a random generator the module draws from while training (a
    /// [`Dropout`](crate::layers::Dropout)'s), so that a
    /// [`TrainingSnapshot`](crate::snapshot::TrainingSnapshot) saves and restores it.
    pub fn generator(&mut self, name: &str, state: &'a Cell<u64>) {
        let len = enter(&mut self.path, self.named, name, "");
        (self.f)(&self.path, Entry::Generator(state));
        self.path.truncate(len);
    }

    /// Walks a child module, its names prefixed with `name.` (an empty `name` adds no
    /// segment: the child's entries count as the caller's own).
    pub fn module<M: Module<T> + ?Sized>(&mut self, name: &str, module: &'a M) {
        let len = enter(&mut self.path, self.named, name, ".");
        module.visit(self);
        self.path.truncate(len);
    }

    /// Walks a list of child modules, named `name.0`, `name.1`, … (PyTorch's `ModuleList`).
    pub fn modules<M: Module<T> + 'a>(
        &mut self,
        name: &str,
        modules: impl IntoIterator<Item = &'a M>,
    ) {
        let len = enter(&mut self.path, self.named, name, ".");
        for (i, module) in modules.into_iter().enumerate() {
            if self.named {
                self.module(&i.to_string(), module);
            } else {
                self.module("", module);
            }
        }
        self.path.truncate(len);
    }
}

/// [`Visitor`], mutably; also walks a module's direct children only
/// ([`children`](VisitorMut::children)), which is how [`Module::set_training`] reaches them.
pub struct VisitorMut<'a, 'f, T: Float> {
    path: String,
    /// Whether paths are built (`false`: every entry is reported with an empty path).
    named: bool,
    on_entry: Option<EntryFn<'a, 'f, T>>,
    on_child: Option<ChildFn<'a, 'f, T>>,
}

/// What [`VisitorMut::new`] calls with each path and entry.
type EntryFn<'a, 'f, T> = &'f mut dyn FnMut(&str, EntryMut<'a, T>);

/// What [`VisitorMut::children`] calls with each child's name and the child.
type ChildFn<'a, 'f, T> = &'f mut dyn FnMut(&str, &'a mut dyn Module<T>);

impl<'a, 'f, T: Float> VisitorMut<'a, 'f, T> {
    /// A walk that calls `f` with each parameter's or buffer's path.
    pub fn new(f: &'f mut dyn FnMut(&str, EntryMut<'a, T>)) -> Self {
        VisitorMut {
            path: String::new(),
            named: true,
            on_entry: Some(f),
            on_child: None,
        }
    }

    /// A walk that calls `f` with each parameter and buffer and an empty path: it builds no
    /// names, so it allocates nothing (what [`Module::params_mut`] uses on every training
    /// step).
    pub fn unnamed(f: &'f mut dyn FnMut(&str, EntryMut<'a, T>)) -> Self {
        VisitorMut {
            path: String::new(),
            named: false,
            on_entry: Some(f),
            on_child: None,
        }
    }

    /// A walk that calls `f` with each direct child module (and its name) instead of
    /// descending into it, and skips parameters and buffers.
    pub fn children(f: &'f mut dyn FnMut(&str, &'a mut dyn Module<T>)) -> Self {
        VisitorMut {
            path: String::new(),
            named: true,
            on_entry: None,
            on_child: Some(f),
        }
    }

    /// Reports a parameter (`None`, a layer not built yet, is skipped).
    pub fn param(&mut self, name: &str, param: impl Into<Option<&'a mut Param<T>>>) {
        if let (Some(f), Some(p)) = (&mut self.on_entry, param.into()) {
            let len = enter(&mut self.path, self.named, name, "");
            f(&self.path, EntryMut::Param(p));
            self.path.truncate(len);
        }
    }

    /// Reports a buffer (`None`, a layer not built yet, is skipped).
    pub fn buffer(&mut self, name: &str, buffer: impl Into<Option<&'a mut Buffer<T>>>) {
        if let (Some(f), Some(b)) = (&mut self.on_entry, buffer.into()) {
            let len = enter(&mut self.path, self.named, name, "");
            f(&self.path, EntryMut::Buffer(b));
            self.path.truncate(len);
        }
    }

    /// Walks a child module, its names prefixed with `name.` (an empty `name` adds no
    /// segment).
    pub fn module<M: Module<T>>(&mut self, name: &str, module: &'a mut M) {
        if let Some(f) = &mut self.on_child {
            f(name, module);
            return;
        }
        let len = enter(&mut self.path, self.named, name, ".");
        module.visit_mut(self);
        self.path.truncate(len);
    }

    /// Walks a list of child modules, named `name.0`, `name.1`, … (PyTorch's `ModuleList`).
    pub fn modules<M: Module<T> + 'a>(
        &mut self,
        name: &str,
        modules: impl IntoIterator<Item = &'a mut M>,
    ) {
        for (i, module) in modules.into_iter().enumerate() {
            if self.on_child.is_some() {
                // Direct children keep their full local name.
                self.module(&format!("{name}.{i}"), module);
                continue;
            }
            let len = enter(&mut self.path, self.named, name, ".");
            if self.named {
                self.module(&i.to_string(), module);
            } else {
                self.module("", module);
            }
            self.path.truncate(len);
        }
    }
}

/// Appends `name` and `separator` to `path` (nothing for an empty name, or when paths are
/// not `named`) and returns the length to truncate back to.
fn enter(path: &mut String, named: bool, name: &str, separator: &str) -> usize {
    let len = path.len();
    if named && !name.is_empty() {
        path.push_str(name);
        path.push_str(separator);
    }
    len
}

/// Names every parameter and buffer of `module` by its path (`"dense_0.kernel"`): what
/// [`Param::name`] and checkpoints show. Containers ([`Sequential`](crate::layers::Sequential),
/// [`Model`](crate::model::Model)) call it once built.
///
/// Panics if two entries have the same path (a [`Module::visit`] that reports one name
/// twice), naming it.
#[track_caller]
pub fn assign_paths<T: Float, M: Module<T> + ?Sized>(module: &mut M) {
    let mut seen = std::collections::HashSet::new();
    module.visit_mut(&mut VisitorMut::new(&mut |path, entry| {
        assert!(
            seen.insert(path.to_string()),
            "two parameters or buffers have the path '{path}': give each entry of a \
             module's visit a distinct name"
        );
        match entry {
            EntryMut::Param(p) => {
                if p.name() != path {
                    p.set_name(path.to_string());
                }
            }
            EntryMut::Buffer(b) => {
                if b.name() != path {
                    b.set_name(path.to_string());
                }
            }
        }
    }));
}
