//! The administration methods (contract §7). Their params and results are the domain's, in
//! `access::admin`, which the JSON-RPC methods and `llmrpc admin` on the database both call.

use super::method::Method;
use crate::access::admin::{AddCredits, CreateKey, CreateTeam, Id, ListKeys, NoParams, UpdateTeam};
use crate::access::keys::CreatedKey;
use crate::ledger::accounts::{KeyInfo, Team};

pub(crate) struct TeamsCreate;

impl Method for TeamsCreate {
    const NAME: &'static str = "admin.teams.create";
    type Params = CreateTeam;
    type Result = Team;
}

pub(crate) struct TeamsList;

impl Method for TeamsList {
    const NAME: &'static str = "admin.teams.list";
    type Params = NoParams;
    type Result = Vec<Team>;
}

pub(crate) struct TeamsGet;

impl Method for TeamsGet {
    const NAME: &'static str = "admin.teams.get";
    type Params = Id;
    type Result = Team;
}

pub(crate) struct TeamsUpdate;

impl Method for TeamsUpdate {
    const NAME: &'static str = "admin.teams.update";
    type Params = UpdateTeam;
    type Result = Team;
}

pub(crate) struct TeamsDelete;

impl Method for TeamsDelete {
    const NAME: &'static str = "admin.teams.delete";
    type Params = Id;
    type Result = Team;
}

pub(crate) struct KeysCreate;

impl Method for KeysCreate {
    const NAME: &'static str = "admin.keys.create";
    type Params = CreateKey;
    /// The key's secret, shown once, and what is stored of it.
    type Result = CreatedKey;
}

pub(crate) struct KeysList;

impl Method for KeysList {
    const NAME: &'static str = "admin.keys.list";
    type Params = ListKeys;
    type Result = Vec<KeyInfo>;
}

pub(crate) struct KeysRevoke;

impl Method for KeysRevoke {
    const NAME: &'static str = "admin.keys.revoke";
    type Params = Id;
    type Result = KeyInfo;
}

pub(crate) struct CreditsAdd;

impl Method for CreditsAdd {
    const NAME: &'static str = "admin.credits.add";
    type Params = AddCredits;
    type Result = Team;
}
