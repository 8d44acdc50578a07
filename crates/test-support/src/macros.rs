//! `tests!` and `backend_tests!`: each test module lists its tests once, and
//! gets a `pub(crate) fn trials()` that its binary's `main` hands to
//! [`crate::harness::run`]. Under `harness = false` a forgotten `#[test]`
//! would vanish without a word; an unlisted test function is dead code, which
//! the lints refuse.

/// Lists a module's tests, in sections (each optional, in this order):
///
/// ```text
/// tessera_test_support::tests! {
///     backends: a, #[needs(PythonModule("pyotp"))] b; // async fn(TestDb), on SQLite and on PostgreSQL
///     multi_thread: c, #[needs(Postgres)] d;          // async fn(), 2 worker threads
///     current_thread: e;                               // async fn(), #[tokio::test]
///     sync: f;                                         // fn(), #[test]
/// }
/// ```
///
/// `needs` takes [`crate::harness::Need`] variants. Names are the module's
/// path without the crate (`http_mfa::on_postgres::b`, `http_mfa::c`).
#[macro_export]
macro_rules! tests {
    (
        $(backends: $($(#[needs($($bneed:expr),+ $(,)?)])? $bname:ident),+ $(,)? ;)?
        $(multi_thread: $($(#[needs($($mneed:expr),+ $(,)?)])? $mname:ident),+ $(,)? ;)?
        $(current_thread: $($(#[needs($($cneed:expr),+ $(,)?)])? $cname:ident),+ $(,)? ;)?
        $(sync: $($(#[needs($($sneed:expr),+ $(,)?)])? $sname:ident),+ $(,)? ;)?
    ) => {
        pub(crate) fn trials() -> ::std::vec::Vec<$crate::harness::Test> {
            #[allow(unused_imports)]
            use $crate::harness::{Flavor, Need::{self, *}, Test};
            let name = |n: &str| $crate::harness::test_name(module_path!(), n);
            #[allow(unused_mut)]
            let mut trials = ::std::vec::Vec::new();
            $($({
                let needs: &[Need] = &[$($($bneed),+)?];
                trials.push(
                    Test::on(Flavor::MultiThread, name(concat!("on_sqlite::", stringify!($bname))), || async {
                        $bname($crate::TestDb::sqlite().await).await
                    })
                    .needs(needs.iter().copied()),
                );
                trials.push(
                    Test::on(Flavor::MultiThread, name(concat!("on_postgres::", stringify!($bname))), || async {
                        $bname($crate::TestDb::postgres().await).await
                    })
                    .needs(needs.iter().copied().chain([Postgres])),
                );
            })+)?
            $($({
                let needs: &[Need] = &[$($($mneed),+)?];
                trials.push(Test::on(Flavor::MultiThread, name(stringify!($mname)), $mname).needs(needs.iter().copied()));
            })+)?
            $($({
                let needs: &[Need] = &[$($($cneed),+)?];
                trials.push(Test::on(Flavor::CurrentThread, name(stringify!($cname)), $cname).needs(needs.iter().copied()));
            })+)?
            $($({
                let needs: &[Need] = &[$($($sneed),+)?];
                trials.push(Test::sync(name(stringify!($sname)), $sname).needs(needs.iter().copied()));
            })+)?
            trials
        }
    };
}

/// Runs each listed `async fn name(db: TestDb)` on SQLite and on PostgreSQL
/// (`on_sqlite::name`, `on_postgres::name`); a name may carry
/// `#[needs(…)]`. Shorthand for [`tests!`] with only a `backends` section.
#[macro_export]
macro_rules! backend_tests {
    ($($tests:tt)*) => {
        $crate::tests! { backends: $($tests)*; }
    };
}
