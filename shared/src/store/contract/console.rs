//! The contract of what the operator console reads: its sessions, member counts and search, one
//! run by id, the audit search. Every adapter must agree with the domain's definitions
//! ([`MemberSearch::matches`], [`MemberCounts::add`], [`AuditSearch::matches`]) whether it keeps
//! the trait's defaults or answers from SQL or an index.

use std::collections::BTreeSet;
use std::future::Future;

use super::{audit_entry, cleanup, link, outcome, run_report, setup_client, site_user, T0};
use crate::clock::Timestamp;
use crate::domain::{
    AuditEntry, AuditSearch, ConsoleSession, ConsoleSignIn, LastError, Link, LinkStatus, Member,
    MemberCounts, MemberFilter, MemberSearch, UnlinkPolicy, UnlinkReason,
};
use crate::store::{Cursor, Page, Store, StoreResult};

// --- console sessions ----------------------------------------------------------------------------

pub fn console_session(id_sha256: &str, expires_at: Timestamp) -> ConsoleSession {
    ConsoleSession {
        id_sha256: id_sha256.to_owned(),
        signed_in_with: ConsoleSignIn::Bootstrap {
            token_sha256: format!("bootstrap-{id_sha256}"),
        },
        created_at: expires_at - 8 * 3600,
        expires_at,
    }
}

pub async fn console_sessions_are_read_until_they_expire_and_deleted_on_sign_out(
    store: &dyn Store,
) {
    assert_eq!(store.get_console_session("s1", T0).await.unwrap(), None);

    // given two sessions, one signed in with an API token
    let first = console_session("s1", T0 + 100);
    let second = ConsoleSession {
        signed_in_with: ConsoleSignIn::ApiToken {
            token_id: "t1".to_owned(),
            token_sha256: Some("ab".repeat(32)),
        },
        ..console_session("s2", T0 + 1000)
    };
    store.put_console_session(&first).await.unwrap();
    store.put_console_session(&second).await.unwrap();

    // then each is read back whole until it expires, and never after
    assert_eq!(
        store.get_console_session("s1", T0).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(
        store
            .get_console_session("s1", T0 + 99)
            .await
            .unwrap()
            .as_ref(),
        Some(&first)
    );
    assert_eq!(
        store.get_console_session("s1", T0 + 101).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store
            .get_console_session("s2", T0 + 101)
            .await
            .unwrap()
            .as_ref(),
        Some(&second)
    );
    assert_eq!(
        store.get_console_session("s3", T0).await.unwrap(),
        None,
        "unknown"
    );

    // when a session is put again, the new one replaces it
    let extended = console_session("s1", T0 + 500);
    store.put_console_session(&extended).await.unwrap();
    assert_eq!(
        store
            .get_console_session("s1", T0 + 200)
            .await
            .unwrap()
            .as_ref(),
        Some(&extended)
    );

    // when one signs out, only that one goes; signing out twice is no error
    store.delete_console_session("s1").await.unwrap();
    assert_eq!(store.get_console_session("s1", T0).await.unwrap(), None);
    store.delete_console_session("s1").await.unwrap();
    store.delete_console_session("never").await.unwrap();
    assert_eq!(
        store.get_console_session("s2", T0).await.unwrap().as_ref(),
        Some(&second)
    );
}

// --- the console's members -----------------------------------------------------------------------

/// Members of client `a` in every standing, named for it (`b` has one member too):
///
/// | user id          | standing                                        |
/// |------------------|-------------------------------------------------|
/// | `u01-active`     | linked, names `alice` / `Zed Global` / `[C] Nicky`, Discord id `100000000000000001` |
/// | `u02-left`       | linked, left the guild                          |
/// | `u03-revoked`    | linked, revoked (`carol_99`)                    |
/// | `u04-unlinked`   | pushed by the site, never linked                |
/// | `u05-pending`    | pushed, pending                                 |
/// | `u06-error`      | linked, last attempt failed, still pending      |
/// | `u07-unlinking`  | unlinked, the former account's clean-up waiting |
/// | `u08-unicode`    | linked, `ÄRGER` / no global name / `Øyvind`     |
/// | `u09-percent`    | linked, `50%_off`                               |
/// | `u10`…           | `fillers` site users, every third pending       |
pub async fn seed_console_members(store: &dyn Store, fillers: usize) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    let linked = |user_id: &'static str, link: Link, pending: bool| async move {
        store
            .save_site_user("a", &site_user(user_id, &["g"]), pending, T0)
            .await
            .unwrap();
        store
            .create_link("a", user_id, &link, None, pending, T0)
            .await
            .unwrap()
    };
    let named = |discord: &str, username: &str, global: Option<&str>, nick: Option<&str>| Link {
        username: username.to_owned(),
        global_name: global.map(str::to_owned),
        nickname: nick.map(str::to_owned),
        ..link(discord)
    };

    linked(
        "u01-active",
        named(
            "100000000000000001",
            "alice",
            Some("Zed Global"),
            Some("[C] Nicky"),
        ),
        false,
    )
    .await;
    for (user_id, discord, username, status) in [
        ("u02-left", "100000000000000002", "bob", LinkStatus::Left),
        (
            "u03-revoked",
            "100000000000000003",
            "carol_99",
            LinkStatus::Revoked,
        ),
    ] {
        let m = linked(user_id, named(discord, username, None, None), false).await;
        let mut gone = outcome(&[], false);
        gone.status = status;
        gone.nickname = None;
        assert!(store
            .record_outcome("a", user_id, m.version, &gone, T0 + 1)
            .await
            .unwrap());
    }
    for (user_id, pending) in [("u04-unlinked", false), ("u05-pending", true)] {
        store
            .save_site_user("a", &site_user(user_id, &[]), pending, T0)
            .await
            .unwrap();
    }
    let m = linked(
        "u06-error",
        named("100000000000000006", "dave", None, None),
        true,
    )
    .await;
    let mut failed = outcome(&[], true);
    failed.nickname = None;
    failed.last_error = Some(LastError {
        code: "missing_permissions".to_owned(),
        message: "Missing Permissions".to_owned(),
        discord_code: Some(50013),
        at: T0 + 1,
    });
    store
        .record_outcome("a", "u06-error", m.version, &failed, T0 + 1)
        .await
        .unwrap();
    linked(
        "u07-unlinking",
        named("100000000000000007", "erin", None, None),
        false,
    )
    .await;
    store
        .delete_link(
            "a",
            "u07-unlinking",
            Some(&cleanup(UnlinkReason::Unlinked, UnlinkPolicy::RemoveRoles)),
            T0 + 2,
        )
        .await
        .unwrap();
    linked(
        "u08-unicode",
        named("100000000000000008", "ÄRGER", None, Some("Øyvind")),
        false,
    )
    .await;
    linked(
        "u09-percent",
        named("100000000000000009", "50%_off", None, None),
        false,
    )
    .await;
    for n in 0..fillers {
        store
            .save_site_user(
                "a",
                &site_user(&format!("u{}", 10 + n), &[]),
                n.is_multiple_of(3),
                T0,
            )
            .await
            .unwrap();
    }
    store
        .save_site_user("b", &site_user("u01-active", &[]), true, T0)
        .await
        .unwrap();
}

/// Follows a search's cursors to the end and returns every item and how many pages it took.
/// A search may answer with short (even empty) pages and a cursor — its budget ran out — or with
/// a few more than `limit`; it must never repeat or skip an item.
pub async fn search_all<T, F, Fut>(mut search: F) -> (Vec<T>, usize)
where
    F: FnMut(Option<Cursor>) -> Fut,
    Fut: Future<Output = StoreResult<Page<T>>>,
{
    let mut items = Vec::new();
    let mut after = None;
    for pages in 1..=1_000 {
        let page = search(after).await.expect("a search page");
        items.extend(page.items);
        match page.next {
            None => return (items, pages),
            Some(next) => after = Some(next),
        }
    }
    panic!("the search never ended");
}

async fn all_members(store: &dyn Store, client: &str) -> Vec<Member> {
    let (members, _) =
        search_all(|after| async move { store.list_members(client, after.as_ref(), 7).await })
            .await;
    members
}

/// The user ids a search of client `a` finds, every page followed, checked for order and
/// repeats.
pub async fn searched(store: &dyn Store, search: &MemberSearch, limit: usize) -> Vec<String> {
    let (members, pages) = search_all(|after| async move {
        store
            .search_members("a", search, after.as_ref(), limit)
            .await
    })
    .await;
    let ids: Vec<String> = members.iter().map(|m| m.user.user_id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "{search:?}: by user id, each once");
    if ids.len() > 2 * limit {
        assert!(pages > 1, "{search:?}: {} matches in one page", ids.len());
    }
    assert!(
        members.iter().all(|m| m.client == "a" && search.matches(m)),
        "{search:?}: only matches"
    );
    ids
}

fn search(filter: MemberFilter, text: Option<&str>) -> MemberSearch {
    MemberSearch {
        filter,
        text: text.map(str::to_owned),
    }
}

pub async fn members_are_counted_in_every_standing(store: &dyn Store) {
    // given members in every standing, a different number in each
    seed_console_members(store, 0).await;
    for (n, status) in [
        (20, Some(LinkStatus::Revoked)),
        (21, Some(LinkStatus::Left)),
        (22, Some(LinkStatus::Left)),
        (23, None),
        (24, None),
        (25, None),
        (26, Some(LinkStatus::Active)),
    ] {
        let user_id = format!("u{n}");
        let m = store
            .create_link("a", &user_id, &link(&format!("2000{n}")), None, false, T0)
            .await
            .unwrap();
        match status {
            Some(LinkStatus::Active) => {}
            Some(status) => {
                let mut gone = outcome(&[], false);
                gone.status = status;
                assert!(store
                    .record_outcome("a", &user_id, m.version, &gone, T0 + 1)
                    .await
                    .unwrap());
            }
            None => {
                let unlink = cleanup(UnlinkReason::Unlinked, UnlinkPolicy::RemoveRoles);
                store
                    .delete_link("a", &user_id, Some(&unlink), T0 + 2)
                    .await
                    .unwrap();
            }
        }
    }

    // when they are counted
    let counts = store.count_members("a").await.unwrap();

    // then each standing has its own count
    assert_eq!(
        counts,
        MemberCounts {
            total: 16,
            linked: 5,
            pending: 6,
            errors: 1,
            left: 3,
            revoked: 2,
            unlinking: 4,
        }
    );
    // and they agree with counting the listing member by member
    let mut listed = MemberCounts::default();
    all_members(store, "a")
        .await
        .iter()
        .for_each(|m| listed.add(m));
    assert_eq!(counts, listed);
    // and other clients are counted apart
    assert_eq!(
        store.count_members("b").await.unwrap(),
        MemberCounts {
            total: 1,
            pending: 1,
            ..MemberCounts::default()
        }
    );
    assert_eq!(
        store.count_members("nobody").await.unwrap(),
        MemberCounts::default()
    );
}

pub async fn members_are_searched_by_filter_and_text_across_pages(store: &dyn Store) {
    // given members in every standing and 20 more site users
    seed_console_members(store, 20).await;
    let members = all_members(store, "a").await;
    assert_eq!(members.len(), 29);

    // then each filter finds exactly its members
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let fillers = |pending_only: bool| {
        (0..20_usize)
            .filter(move |n| !pending_only || n.is_multiple_of(3))
            .map(|n| format!("u{}", 10 + n))
    };
    let all: Vec<String> = members.iter().map(|m| m.user.user_id.clone()).collect();
    assert_eq!(
        searched(store, &search(MemberFilter::All, None), 4).await,
        all
    );
    let mut pending = ids(&["u05-pending", "u06-error", "u07-unlinking"]);
    pending.extend(fillers(true));
    assert_eq!(
        searched(store, &search(MemberFilter::Pending, None), 2).await,
        pending
    );
    assert_eq!(
        searched(store, &search(MemberFilter::Errors, None), 2).await,
        ids(&["u06-error"])
    );
    assert_eq!(
        searched(store, &search(MemberFilter::Left, None), 2).await,
        ids(&["u02-left"])
    );
    assert_eq!(
        searched(store, &search(MemberFilter::Revoked, None), 2).await,
        ids(&["u03-revoked"])
    );
    let mut unlinked = ids(&["u04-unlinked", "u05-pending", "u07-unlinking"]);
    unlinked.extend(fillers(false));
    assert_eq!(
        searched(store, &search(MemberFilter::Unlinked, None), 3).await,
        unlinked
    );

    // and each kind of text finds exactly its members
    for (text, expected) in [
        // a user id, exactly
        ("u05-pending", vec!["u05-pending"]),
        // a Discord id, exactly — a part of one finds nothing
        ("100000000000000001", vec!["u01-active"]),
        ("10000000000000000", vec![]),
        // part of a user id, any case
        (
            "U2",
            vec![
                "u20", "u21", "u22", "u23", "u24", "u25", "u26", "u27", "u28", "u29",
            ],
        ),
        ("-LEFT", vec!["u02-left"]),
        // part of a username, global name or nickname, any case, surrounding blanks ignored
        ("  ALIC ", vec!["u01-active"]),
        ("zed g", vec!["u01-active"]),
        ("nicky", vec!["u01-active"]),
        ("CAROL", vec!["u03-revoked"]),
        // beyond ASCII, case is still ignored
        ("ärger", vec!["u08-unicode"]),
        ("øyv", vec!["u08-unicode"]),
        // characters that are wildcards elsewhere are plain text
        ("%", vec!["u09-percent"]),
        ("_", vec!["u03-revoked", "u09-percent"]),
        ("no such member", vec![]),
    ] {
        assert_eq!(
            searched(store, &search(MemberFilter::All, Some(text)), 2).await,
            ids(&expected),
            "text {text:?}"
        );
    }
    // blank text is no text
    assert_eq!(
        searched(store, &search(MemberFilter::All, Some("   ")), 5).await,
        all
    );

    // and filter and text narrow together: every combination finds what the domain says
    for filter in MemberFilter::ALL {
        for text in [
            None,
            Some("u0"),
            Some("U1"),
            Some("a"),
            Some("100000000000000006"),
        ] {
            let s = search(filter, text);
            let expected: Vec<String> = members
                .iter()
                .filter(|m| s.matches(m))
                .map(|m| m.user.user_id.clone())
                .collect();
            assert_eq!(searched(store, &s, 3).await, expected, "{s:?}");
        }
    }
}

pub async fn a_member_search_continues_from_a_listing_cursor_and_back(store: &dyn Store) {
    seed_console_members(store, 0).await;
    let everyone = search(MemberFilter::All, None);

    // a listing's cursor starts a search after that listing's page
    let listed = store.list_members("a", None, 3).await.unwrap();
    let cursor = listed.next.expect("more members follow");
    let page = store
        .search_members("a", &everyone, Some(&cursor), 3)
        .await
        .unwrap();
    assert_eq!(
        page.items.first().map(|m| m.user.user_id.as_str()),
        Some("u04-unlinked")
    );

    // and a search's cursor continues a listing after the search's page
    let page = store.search_members("a", &everyone, None, 3).await.unwrap();
    let last = page.items.last().map(|m| m.user.user_id.clone());
    let cursor = page.next.expect("more members follow");
    let listed = store.list_members("a", Some(&cursor), 3).await.unwrap();
    let first = listed.items.first().map(|m| m.user.user_id.clone());
    assert!(first > last, "{first:?} follows {last:?}");
}

// --- runs and the audit trail --------------------------------------------------------------------

pub async fn a_run_is_read_by_id_within_its_client(store: &dyn Store) {
    // given runs of two clients, one of them saved again as it finished
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    for (id, started) in [("r1", 10), ("r2", 20), ("r3", 30)] {
        store
            .put_run(&run_report("a", id, T0 + started))
            .await
            .unwrap();
    }
    let mut finished = run_report("a", "r2", T0 + 20);
    finished.complete = true;
    finished.finished_at = T0 + 25;
    store.put_run(&finished).await.unwrap();
    store.put_run(&run_report("b", "r9", T0 + 5)).await.unwrap();

    // then a run is found by its id, as last saved
    assert_eq!(store.get_run("a", "r2").await.unwrap(), Some(finished));
    assert_eq!(
        store.get_run("a", "r1").await.unwrap(),
        Some(run_report("a", "r1", T0 + 10))
    );
    // and not under another client, nor by an unknown id
    assert_eq!(store.get_run("a", "r9").await.unwrap(), None);
    assert_eq!(store.get_run("b", "r1").await.unwrap(), None);
    assert_eq!(store.get_run("a", "r").await.unwrap(), None);
    assert_eq!(store.get_run("nobody", "r1").await.unwrap(), None);
    assert_eq!(
        store.get_run("b", "r9").await.unwrap(),
        Some(run_report("b", "r9", T0 + 5))
    );
}

const ACTORS: [&str; 3] = ["admin", "sso", "task:verify-groups"];
const ACTIONS: [&str; 4] = ["role.add", "link.create", "role.remove", "member.left"];

/// Entry `n` of a varied audit trail, at `T0 + 10 n`: actors and actions in turn; site user
/// `u<n % 5>` with Discord account `d<n % 5>`, except that `d4` has no site user and every
/// seventh entry names no member.
pub fn varied_audit_entry(client: &str, n: usize) -> AuditEntry {
    let member = n % 5;
    let named = !n.is_multiple_of(7);
    AuditEntry {
        actor: ACTORS[n % ACTORS.len()].to_owned(),
        action: ACTIONS[n % ACTIONS.len()].to_owned(),
        user_id: (named && member != 4).then(|| format!("u{member}")),
        discord_user_id: named.then(|| format!("d{member}")),
        ..audit_entry(client, &format!("e{n}"), T0 + 10 * n as Timestamp)
    }
}

/// The ids a search of client `a`'s audit finds, every page followed, checked for repeats.
pub async fn audit_searched(store: &dyn Store, search: &AuditSearch, limit: usize) -> Vec<String> {
    let (entries, pages) =
        search_all(
            |after| async move { store.search_audit("a", search, after.as_ref(), limit).await },
        )
        .await;
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{search:?}: each once");
    if ids.len() > 2 * limit {
        assert!(pages > 1, "{search:?}: {} matches in one page", ids.len());
    }
    assert!(
        entries.iter().all(|e| e.client == "a" && search.matches(e)),
        "{search:?}: only matches"
    );
    ids
}

pub async fn the_audit_is_searched_by_member_action_actor_and_time_across_pages(store: &dyn Store) {
    // given 30 varied entries of client `a`, appended in time order, and the same of `b`
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    for chunk in (0..30).collect::<Vec<usize>>().chunks(4) {
        let entries: Vec<AuditEntry> = chunk
            .iter()
            .flat_map(|n| [varied_audit_entry("a", *n), varied_audit_entry("b", *n)])
            .collect();
        store.append_audit(&entries).await.unwrap();
    }
    let ids = |ns: &[usize]| ns.iter().map(|n| format!("e{n}")).collect::<Vec<String>>();
    let newest_first = |keep: &dyn Fn(usize) -> bool| {
        (0..30)
            .rev()
            .filter(|n| keep(*n))
            .map(|n| format!("e{n}"))
            .collect::<Vec<String>>()
    };

    // then each criterion finds exactly its entries, newest first
    let by = |f: fn(&mut AuditSearch)| {
        let mut s = AuditSearch::default();
        f(&mut s);
        s
    };
    assert_eq!(
        audit_searched(store, &AuditSearch::default(), 4).await,
        newest_first(&|_| true)
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.member = Some("u1".into())), 2).await,
        newest_first(&|n| n % 5 == 1 && !n.is_multiple_of(7)),
        "by site user"
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.member = Some("d1".into())), 2).await,
        newest_first(&|n| n % 5 == 1 && !n.is_multiple_of(7)),
        "by the Discord id of the same entries"
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.member = Some("d4".into())), 2).await,
        ids(&[29, 24, 19, 9, 4]),
        "by a Discord id that has no site user"
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.member = Some("u".into())), 2).await,
        Vec::<String>::new(),
        "members are matched exactly"
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.action = Some("role.add".into())), 3).await,
        newest_first(&|n| n.is_multiple_of(4))
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.actor = Some("sso".into())), 3).await,
        newest_first(&|n| n % 3 == 1)
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.since = Some(T0 + 200)), 3).await,
        newest_first(&|n| n >= 20),
        "since is inclusive"
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.until = Some(T0 + 50)), 2).await,
        newest_first(&|n| n <= 5),
        "until is inclusive"
    );
    assert_eq!(
        audit_searched(
            store,
            &by(|s| {
                s.since = Some(T0 + 55);
                s.until = Some(T0 + 250);
                s.action = Some("link.create".into());
            }),
            2
        )
        .await,
        newest_first(&|n| (6..=25).contains(&n) && n % 4 == 1)
    );
    assert_eq!(
        audit_searched(
            store,
            &by(|s| {
                s.member = Some("u2".into());
                s.actor = Some("admin".into());
            }),
            1
        )
        .await,
        newest_first(&|n| n % 5 == 2 && !n.is_multiple_of(7) && n.is_multiple_of(3))
    );
    assert_eq!(
        audit_searched(store, &by(|s| s.action = Some("client.create".into())), 5).await,
        Vec::<String>::new()
    );

    // and a search continues from a listing's cursor
    let listed = store.list_audit("a", None, 2).await.unwrap();
    let cursor = listed.next.expect("more entries follow");
    let page = store
        .search_audit("a", &AuditSearch::default(), Some(&cursor), 2)
        .await
        .unwrap();
    assert_eq!(
        page.items.first().map(|e| e.id.as_str()),
        Some("e27"),
        "after the listing's page"
    );
}
