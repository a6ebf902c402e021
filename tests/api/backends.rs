//! One test per backend: the macros that turn `async fn name(backend: Backend)`
//! into a SQLite and a PostgreSQL test (and the ignored, real-QEMU variant).

/// Generates one test per backend from `async fn $name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// [`on_both_backends!`] for tests that need a real libvirtd + QEMU: ignored
/// by a plain `cargo test` (reported as ignored, never as passed); the test
/// command runs them with `--ignored` after starting libvirtd, and fails if
/// they cannot run.
#[macro_export]
macro_rules! on_both_backends_with_qemu {
    ($($name:ident),* $(,)?) => {
        // Under `qemu::` whatever file they are in: the test command's
        // real-QEMU lane selects them by that name.
        mod qemu {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    #[ignore = "needs libvirtd + QEMU: scripts/test.sh runs it with --ignored"]
                    async fn $name() {
                        super::super::$name($crate::helpers::Backend::Sqlite).await
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    #[ignore = "needs libvirtd + QEMU: scripts/test.sh runs it with --ignored"]
                    async fn $name() {
                        super::super::$name($crate::helpers::Backend::Postgres).await
                    }
                )*
            }
        }
    };
}
