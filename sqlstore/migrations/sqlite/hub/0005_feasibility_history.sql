-- Each researcher's feasibility questions and the answers the hub gave.
CREATE TABLE feasibility_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    requester    TEXT NOT NULL, -- name and organisation, as the nodes' budgets key them
    asked_at     TEXT NOT NULL,
    query_hash   TEXT NOT NULL,
    result       TEXT NOT NULL  -- JSON FeasibilityResult
);
CREATE INDEX feasibility_history_requester ON feasibility_history (requester, id);
