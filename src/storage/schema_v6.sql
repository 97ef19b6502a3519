-- Schema version 6 (SQLite and PostgreSQL alike): the enrichment cache.

-- What a CRM's API answered about a record (HubSpot: a deal, contact, company, ticket,
-- owner, or a pipeline's labels), as JSON, with when: answers younger than the source's
-- enrich_ttl are used without asking again, and survive a restart.
CREATE TABLE enrichment_cache (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    fetched_at BIGINT NOT NULL
);
