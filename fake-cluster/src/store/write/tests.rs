//! Tests of the store's writes: concurrent writers, generations, the lock the change runs outside.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::clock::Clock;
use crate::json::json;

fn store() -> Arc<Store> {
    let s = Store::new(1, 100, Clock::new());
    s.create(
        well_known::namespaces(),
        "",
        json!({"metadata": {"name": "a"}}),
    )
    .unwrap();
    Arc::new(s)
}

fn count(o: &Value) -> i64 {
    o.pointer("/data/n")
        .and_then(Value::as_str)
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

#[test]
fn concurrent_writes_of_one_object_lose_nothing() {
    let s = store();
    let cms = well_known::configmaps();
    let first = s
        .create(
            cms,
            "a",
            json!({"metadata": {"name": "c"}, "data": {"n": "0"}}),
        )
        .unwrap();
    let rv0: u64 = meta_str(&first, "resourceVersion")
        .unwrap()
        .parse()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    s.modify(cms, "a", "c", |o| {
                        let n = count(o);
                        o["data"]["n"] = json!((n + 1).to_string());
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let last = s.get(cms, "a", "c").unwrap();
    assert_eq!(count(&last), 400);
    let rv: u64 = meta_str(&last, "resourceVersion").unwrap().parse().unwrap();
    assert_eq!(rv, rv0 + 400);
}

#[test]
fn concurrent_creates_of_one_name_make_one_object() {
    let s = store();
    let cms = well_known::configmaps();
    for round in 0..50 {
        let name = format!("c{round}");
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (s, name) = (s.clone(), name.clone());
                std::thread::spawn(move || {
                    s.create(cms, "a", json!({"metadata": {"name": name}}))
                        .map_err(|e| e.code)
                })
            })
            .collect();
        let mut codes: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().unwrap().err().unwrap_or(201))
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [201, 409, 409], "{name}");
    }
    assert_eq!(s.list(cms, Some("a")).0.len(), 50);
}

#[test]
fn generation_moves_with_the_spec_and_a_deletion_not_with_status_writes() {
    let s = store();
    let jobs = well_known::jobs();
    let generation = |o: &Value| o.pointer("/metadata/generation").and_then(Value::as_i64);
    let job = json!({"metadata": {"name": "j"}, "spec": {"parallelism": 1, "template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(generation(&s.create(jobs, "a", job).unwrap()), Some(1));
    let status = s
        .modify_status(jobs, "a", "j", |j, st| {
            assert_eq!(generation(j), Some(1));
            *st = json!({"active": 1});
            Ok(())
        })
        .unwrap();
    assert_eq!(status.pointer("/status/active"), Some(&json!(1)));
    assert_eq!(generation(&status), Some(1));
    // A spec change through `modify` is a new generation; the status writes after it
    // (the status subresource too, whose body's spec is ignored) keep it.
    let spec = s
        .modify(jobs, "a", "j", |j| {
            j["spec"]["parallelism"] = json!(2);
            Ok(())
        })
        .unwrap();
    assert_eq!(generation(&spec), Some(2));
    let status = s
        .modify_status(jobs, "a", "j", |_, st| {
            st["active"] = json!(2);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        (generation(&status), status.pointer("/status/active")),
        (Some(2), Some(&json!(2)))
    );
    let mut body = (*status).clone();
    body["spec"]["parallelism"] = json!(5);
    body["status"] = json!({"active": 3});
    let put = s
        .update(jobs, "a", "j", body.clone(), Some("status"))
        .unwrap();
    assert_eq!(put.pointer("/spec/parallelism"), Some(&json!(2)));
    assert_eq!(generation(&put), Some(2));
    body["metadata"]["resourceVersion"] = put["metadata"]["resourceVersion"].clone();
    let put = s.update(jobs, "a", "j", body, None).unwrap();
    assert_eq!(put.pointer("/spec/parallelism"), Some(&json!(5)));
    assert_eq!(generation(&put), Some(3));
    // A status-only write that changes nothing is no write.
    let same = s
        .modify_status(jobs, "a", "j", |_, st| {
            st["active"] = json!(3);
            Ok(())
        })
        .unwrap();
    assert!(Arc::ptr_eq(&same, &put));
    // A delete marks the metadata only; kept terminating by the foreground finalizer,
    // the Job gets a new generation, as from the real server's `markAsDeleting` (and
    // only from the first marking).
    let opts = super::super::DeleteOptions {
        propagation: Some(crate::resources::Propagation::Foreground),
        ..Default::default()
    };
    let super::super::Deleted::Terminating(marked) = s.delete(jobs, "a", "j", &opts).unwrap()
    else {
        panic!("a Job with a finalizer is not gone at once");
    };
    assert!(marked.pointer("/metadata/deletionTimestamp").is_some());
    assert_eq!(generation(&marked), Some(4));
    let super::super::Deleted::Terminating(again) = s.delete(jobs, "a", "j", &opts).unwrap() else {
        panic!("still kept by its finalizer");
    };
    assert_eq!(generation(&again), Some(4));
}

#[test]
fn the_change_runs_outside_the_store_lock() {
    let s = store();
    let cms = well_known::configmaps();
    for name in ["c", "d"] {
        s.create(
            cms,
            "a",
            json!({"metadata": {"name": name}, "data": {"n": "1"}}),
        )
        .unwrap();
    }
    // Reading the store from the closure would deadlock under the store's lock.
    let got = s
        .modify(cms, "a", "c", |o| {
            let d = s.get(cms, "a", "d")?;
            o["data"]["n"] = json!((count(o) + count(&d)).to_string());
            Ok(())
        })
        .unwrap();
    assert_eq!(count(&got), 2);
    // A failing closure leaves the object as it was.
    let before = s.get(cms, "a", "c").unwrap();
    let err = s
        .modify(cms, "a", "c", |o| {
            o["data"]["n"] = json!("9");
            Err(ApiError::stale(cms, "c"))
        })
        .unwrap_err();
    assert_eq!(err.code, 409);
    assert!(Arc::ptr_eq(&before, &s.get(cms, "a", "c").unwrap()));
}
