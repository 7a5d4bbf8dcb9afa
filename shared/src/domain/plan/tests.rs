use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const GUILD: &str = "1000";

fn role(id: &str, position: i64, managed: bool, groups: &[&str]) -> Role {
    Role {
        id: id.to_owned(),
        name: format!("role {id}"),
        position,
        managed,
        color: 0,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn guild(roles: &[Role]) -> GuildView<'_> {
    GuildView {
        guild_id: GUILD,
        roles,
        bot_top_position: Some(10),
        owner_id: Some("owner"),
    }
}

fn current(roles: &[&str], nick: Option<&str>) -> Current {
    Current {
        discord_user_id: "42".into(),
        roles: set(roles),
        nickname: nick.map(str::to_owned),
    }
}

#[test]
fn adds_entitled_and_removes_unentitled_managed_roles_only() {
    let roles = [
        role("a", 3, false, &["pilots"]),
        role("b", 2, false, &["officers"]),
        role("u", 1, false, &[]),
    ];
    let desired = Desired {
        roles: entitled_roles(&set(&["pilots"]), &roles),
        nickname: None,
    };
    let p = plan(&desired, &current(&["b", "u"], None), &guild(&roles));
    assert_eq!(p.add, vec!["a"]);
    assert_eq!(p.remove, vec!["b"]);
    assert!(p.issues.is_empty());
}

#[test]
fn roles_the_bot_cannot_manage_become_issues_not_calls() {
    let roles = [
        role(GUILD, 0, false, &["g"]),
        role("booster", 3, true, &["g"]),
        role("high", 10, false, &["g"]),
        role("higher", 20, false, &["g"]),
    ];
    let desired = Desired {
        roles: entitled_roles(&set(&["g"]), &roles),
        nickname: None,
    };
    let p = plan(&desired, &current(&[], None), &guild(&roles));
    assert!(p.is_noop(), "{p:?}");
    let codes: Vec<_> = p.issues.iter().map(PlanIssue::code).collect();
    assert_eq!(
        codes,
        vec![
            "role_is_everyone",
            "role_managed_by_discord",
            "role_above_bot",
            "role_above_bot"
        ]
    );
}

#[test]
fn nickname_is_set_cleared_or_reported_for_owner_and_members_above_the_bot() {
    let roles = [role("a", 3, false, &["g"]), role("admin", 20, false, &[])];
    let want = |n: Option<&str>| Desired {
        roles: BTreeSet::new(),
        nickname: Some(n.map(str::to_owned)),
    };
    let p = plan(
        &want(Some("[T] alice")),
        &current(&[], None),
        &guild(&roles),
    );
    assert_eq!(p.nickname, Some(Some("[T] alice".to_owned())));

    let p = plan(&want(None), &current(&[], Some("old")), &guild(&roles));
    assert_eq!(p.nickname, Some(None));

    let mut owner = current(&[], None);
    owner.discord_user_id = "owner".into();
    let p = plan(&want(Some("x")), &owner, &guild(&roles));
    assert_eq!(p.nickname, None);
    assert_eq!(p.issues, vec![PlanIssue::NicknameOfOwner]);

    let p = plan(&want(Some("x")), &current(&["admin"], None), &guild(&roles));
    assert_eq!(p.issues, vec![PlanIssue::MemberAboveBot]);

    let unmanaged = Desired::default();
    assert!(plan(&unmanaged, &current(&[], Some("any")), &guild(&roles)).is_noop());
}

#[test]
fn unknown_bot_position_trusts_discord_to_refuse() {
    let roles = [role("high", 50, false, &["g"])];
    let mut g = guild(&roles);
    g.bot_top_position = None;
    let desired = Desired {
        roles: set(&["high"]),
        nickname: None,
    };
    assert_eq!(plan(&desired, &current(&[], None), &g).add, vec!["high"]);
}

fn arb_roles() -> impl Strategy<Value = Vec<Role>> {
    let groups = prop::collection::btree_set("[a-d]", 0..3);
    prop::collection::vec((0i64..25, any::<bool>(), groups), 1..12).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (position, managed, groups))| Role {
                id: if i == 0 {
                    GUILD.to_owned()
                } else {
                    format!("r{i}")
                },
                name: format!("r{i}"),
                position: if i == 0 { 0 } else { position },
                color: 0,
                managed,
                groups,
            })
            .collect()
    })
}

fn arb_case() -> impl Strategy<Value = (Vec<Role>, BTreeSet<String>, BTreeSet<String>, Option<i64>)>
{
    arb_roles().prop_flat_map(|roles| {
        let ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
        (
            Just(roles),
            prop::collection::btree_set("[a-e]", 0..4),
            prop::sample::subsequence(ids.clone(), 0..=ids.len())
                .prop_map(|v| v.into_iter().collect::<BTreeSet<_>>()),
            prop::option::of(0i64..25),
        )
    })
}

proptest! {
    #[test]
    fn never_touches_a_role_it_must_not((roles, groups, has, top) in arb_case()) {
        let g = GuildView { guild_id: GUILD, roles: &roles, bot_top_position: top, owner_id: None };
        let desired = Desired { roles: entitled_roles(&groups, &roles), nickname: None };
        let cur = Current { discord_user_id: "1".into(), roles: has, nickname: None };
        let p = plan(&desired, &cur, &g);
        for id in p.add.iter().chain(&p.remove) {
            let r = roles.iter().find(|r| &r.id == id).expect("planned role exists");
            prop_assert!(r.is_mapped(), "unmapped role {id} touched");
            prop_assert!(!r.managed, "Discord-managed role {id} touched");
            prop_assert!(r.id != GUILD, "@everyone touched");
            prop_assert!(top.is_none_or(|t| r.position < t), "role {id} at/above bot touched");
        }
        let adds: BTreeSet<_> = p.add.iter().collect();
        prop_assert!(p.remove.iter().all(|r| !adds.contains(r)));
    }

    #[test]
    fn applying_a_plan_then_planning_again_yields_nothing(
        (roles, groups, has, top) in arb_case(),
        nick in prop::option::of(prop::option::of("[a-z]{1,8}")),
    ) {
        let g = GuildView { guild_id: GUILD, roles: &roles, bot_top_position: top, owner_id: None };
        let desired = Desired { roles: entitled_roles(&groups, &roles), nickname: nick };
        let cur = Current { discord_user_id: "1".into(), roles: has, nickname: None };
        let first = plan(&desired, &cur, &g);
        let second = plan(&desired, &first.applied_to(&cur), &g);
        prop_assert!(second.is_noop(), "second plan not empty: {second:?}");
        prop_assert_eq!(second.issues, first.issues);
    }
}

#[test]
fn refused_writes_are_dropped_and_reported_until_forgotten() {
    let plan = Plan {
        add: vec!["a".into(), "b".into()],
        remove: vec!["c".into()],
        nickname: Some(Some("n".into())),
        issues: vec![],
    };
    let refused: BTreeSet<String> = ["add:a", "remove:c", "nick"]
        .into_iter()
        .map(String::from)
        .collect();
    let left = plan.clone().without_refused(&refused);
    assert_eq!(left.add, vec!["b".to_string()]);
    assert!(left.remove.is_empty() && left.nickname.is_none());
    assert_eq!(
        left.issues
            .iter()
            .filter(|i| i.code() == "refused_earlier")
            .count(),
        3
    );
    // a refusal of adding says nothing about removing the same role
    let other: BTreeSet<String> = ["remove:a".to_string()].into();
    assert_eq!(plan.clone().without_refused(&other), plan.clone());
    assert_eq!(plan.clone().without_refused(&BTreeSet::new()), plan);
}
