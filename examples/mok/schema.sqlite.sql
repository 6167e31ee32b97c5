-- The MOK tracking tables on SQLite (the demo). Production runs them on MariaDB
-- (schema.mariadb.sql); both are owned by the assistances services, which fill them.
-- Run at every load, so it creates only what is missing.
CREATE TABLE IF NOT EXISTS EventProvider (
  Id INTEGER PRIMARY KEY AUTOINCREMENT,
  EventId INTEGER NOT NULL,
  EventProviderStatusId VARCHAR(8) NOT NULL,
  ExternalRequestId VARCHAR(64),
  ExternalData TEXT,
  CreatedAt VARCHAR(32) NOT NULL
);
CREATE INDEX IF NOT EXISTS EventProvider_EventId ON EventProvider (EventId, CreatedAt);

CREATE TABLE IF NOT EXISTS GuaranteePayment (
  Id INTEGER PRIMARY KEY AUTOINCREMENT,
  CaseId INTEGER NOT NULL,
  SelfAssistanceType VARCHAR(64) NOT NULL,
  SelfAssistance VARCHAR(128) NOT NULL,
  Estimate REAL NOT NULL,
  Trm REAL NOT NULL,
  Cie10Diagnosis VARCHAR(16) NOT NULL,
  CreatedAt VARCHAR(32) NOT NULL
);

CREATE VIEW IF NOT EXISTS VwSummaryEventMOK AS
  SELECT CaseId, SelfAssistanceType, SelfAssistance, Estimate, Trm AS TRM,
         Cie10Diagnosis AS CIE10Diagnosis, CreatedAt AS GuaranteePaymentCreatedAt
  FROM GuaranteePayment;

-- Demo data: event 1001 has a closed provider (its case, no OT yet) and event 1002 an
-- open one whose OT 15252900 already exists in the fake MOK; case 321321 has two
-- guarantee payments for NOTE_REGISTER's script.
INSERT OR IGNORE INTO EventProvider (Id, EventId, EventProviderStatusId, ExternalRequestId, CreatedAt)
  VALUES (1, 1001, '4', '20836453|', '2026-11-30T10:00:00Z'),
         (2, 1002, '2', '321321|15252900', '2026-11-30T11:00:00Z');
INSERT OR IGNORE INTO GuaranteePayment (Id, CaseId, SelfAssistanceType, SelfAssistance, Estimate, Trm, Cie10Diagnosis, CreatedAt)
  VALUES (1, 321321, 'MEDICA', 'Consulta domiciliaria', 120.5, 3950.25, 'J06.9', '2026-11-30T11:05:00Z'),
         (2, 321321, 'MEDICA', 'Consulta domiciliaria', 180.0, 3961.1, 'J20.9', '2026-11-30T12:40:00Z');
