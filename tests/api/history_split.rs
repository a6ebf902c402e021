//! The operations list reads the finished history and the active set apart
//! (the filters' indexes hold finished operations only) and merges them:
//! one newest-first list, whatever mix of states its pages cross.

use hyperfleet_core::store::Fill;

use crate::helpers::*;

/// The ids of every page of `path` (`limit` per page), in the order listed.
async fn every_page(app: &TestApp, path: &str, limit: u32) -> Vec<String> {
    app.every_page(path, limit).await.iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

/// Those of `ids` whose operation is `status`, in the same order.
async fn with_status(app: &TestApp, ids: &[String], status: &str) -> Vec<String> {
    let mut with = Vec::new();
    for id in ids {
        if app.get(&format!("/api/v1/operations/{id}")).await.body["status"] == status {
            with.push(id.clone());
        }
    }
    with
}

async fn a_list_merges_what_waits_with_what_finished(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let store = app.core().await.store().clone();
    // Blocks of finished and queued operations, each after the one before in
    // id order, then one submitted through the API (queued, newest).
    let blocks = [("old", 3, Fill::Finished), ("waiting", 2, Fill::Queued), ("done", 4, Fill::Finished)];
    for (tag, n, fill) in blocks {
        store.bench_fill(tag, n, fill).await.unwrap();
    }
    store.bench_fill("late", 2, Fill::Queued).await.unwrap();
    let newest = app.noop(0, 0).await;
    let all = every_page(&app, "/api/v1/operations", 500).await;
    assert_eq!(all.len(), 12);
    assert_eq!(all[0], newest);
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted, "newest first");
    for limit in [1, 2, 3, 5] {
        assert_eq!(every_page(&app, "/api/v1/operations", limit).await, all, "pages of {limit}");
        assert_eq!(every_page(&app, "/api/v1/operations?kind=noop", limit).await, all, "kind, pages of {limit}");
    }
    let queued = with_status(&app, &all, "queued").await;
    assert_eq!(queued.len(), 5);
    assert_eq!(every_page(&app, "/api/v1/operations?status=queued", 2).await, queued);
    assert_eq!(
        every_page(&app, "/api/v1/operations?status=succeeded&kind=noop", 2).await,
        with_status(&app, &all, "succeeded").await
    );
    assert_eq!(every_page(&app, "/api/v1/operations?requested_by=waiting", 1).await.len(), 2);
    assert_eq!(every_page(&app, "/api/v1/operations?requested_by=done", 3).await.len(), 4);
    assert!(every_page(&app, "/api/v1/operations?status=running", 2).await.is_empty());
    app.stop().await;
}

crate::on_both_backends!(a_list_merges_what_waits_with_what_finished);
