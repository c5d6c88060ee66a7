//! The buffer pool's unit tests.

use ndarray::{ArrayD, IxDyn};

use super::owners::SharedBlock;
use super::*;

#[test]
fn classes_are_four_per_octave_and_hold_what_is_asked() {
    for n in 1..5000 {
        let class = class_of(n);
        let capacity = class_capacity(class);
        assert!(capacity >= n, "{n}: class {class} holds {capacity}");
        assert!(capacity * 4 <= n * 5 || n <= 4, "{n} -> {capacity}");
        assert_eq!(class_of(capacity), class, "{n}: capacity {capacity}");
        if class > 0 {
            assert!(
                class_capacity(class - 1) < n,
                "{n}: a smaller class holds it"
            );
        }
    }
    assert_eq!(
        (1..=12).map(|c| class_capacity(c - 1)).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16]
    );
}

#[test]
fn a_recycled_block_is_handed_out_again_and_release_frees_it() {
    release();
    let v: Vec<f32> = vec(1000);
    assert_eq!(v.capacity(), 1024);
    let p = v.as_ptr();
    recycle(v);
    assert_eq!(held(), 4096);
    let w: Vec<u32> = vec(900); // same layout and class
    assert_eq!((w.as_ptr().cast::<f32>(), w.capacity()), (p, 1024));
    assert_eq!(held(), 0);
    recycle(w);
    // A vector of another capacity is not kept.
    recycle(Vec::<f32>::with_capacity(1000));
    assert_eq!(release(), 4096);
    assert_eq!(held(), 0);
}

#[test]
fn the_limit_bounds_what_a_thread_keeps() {
    std::thread::spawn(|| {
        let before = limit();
        set_limit(8192);
        let (a, b) = (vec::<f64>(640), vec::<f64>(640)); // 5120 bytes each
        recycle(a);
        recycle(b);
        set_limit(before);
        assert_eq!(held(), 5120);
    })
    .join()
    .unwrap();
}

#[test]
fn a_class_keeps_no_more_blocks_than_it_had_out_at_once() {
    std::thread::spawn(|| {
        let v: Vec<f32> = vec(100);
        recycle(v);
        // Two blocks of the class given back, one handed out: one is kept.
        recycle(Vec::<f32>::with_capacity(112));
        recycle(Vec::<f32>::with_capacity(112));
        assert_eq!(held(), 112 * 4);
        // A class never handed out keeps nothing.
        recycle(Vec::<f32>::with_capacity(4096));
        assert_eq!(held(), 112 * 4);
    })
    .join()
    .unwrap();
}

#[test]
fn a_shared_value_is_dropped_once_with_its_last_owner() {
    std::thread::spawn(|| {
        let drops = std::rc::Rc::new(());
        let a = Shared::new((drops.clone(), 7_u64));
        let b = a.clone();
        drop(a);
        assert_eq!((b.1, std::rc::Rc::strong_count(&drops)), (7, 2));
        drop(b);
        assert_eq!(std::rc::Rc::strong_count(&drops), 1);
        let list = SharedList::list(&[3, 1, 2]);
        assert_eq!(&list[..], [3, 1, 2]);
        drop(list);
        // The list's buffer and both blocks went back to the pool.
        assert_eq!(
            held(),
            3 * 8
                + size_of::<SharedBlock<(std::rc::Rc<()>, u64)>>()
                + size_of::<SharedBlock<PooledVec<usize>>>()
        );
    })
    .join()
    .unwrap();
}

#[test]
fn boxes_and_pooled_arrays_give_their_buffers_back() {
    release();
    let b = ArrayBox::new(filled(&[2, 3], 1.5_f32));
    assert_eq!(b[[1, 2]], 1.5);
    drop(b);
    // The six elements' buffer and the box's block.
    assert_eq!(held(), 6 * 4 + size_of::<ArrayD<f32>>());
    let p = Pooled::new(filled(&[4], 2.0_f64));
    let q = p.clone();
    assert_eq!(q.into_array(), ArrayD::from_elem(IxDyn(&[4]), 2.0));
    drop(p);
    assert_eq!(release(), 6 * 4 + size_of::<ArrayD<f32>>() + 4 * 8);
}
