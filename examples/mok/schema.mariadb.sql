-- The MOK tracking tables on MariaDB / MySQL, as production has them (see
-- schema.sqlite.sql for the demo's). Safe to run again.
CREATE TABLE IF NOT EXISTS EventProvider (
  Id BIGINT PRIMARY KEY AUTO_INCREMENT,
  EventId BIGINT NOT NULL,
  EventProviderStatusId VARCHAR(8) NOT NULL,
  ExternalRequestId VARCHAR(64),
  ExternalData TEXT,
  CreatedAt VARCHAR(32) NOT NULL,
  INDEX EventProvider_EventId (EventId, CreatedAt)
);

CREATE TABLE IF NOT EXISTS GuaranteePayment (
  Id BIGINT PRIMARY KEY AUTO_INCREMENT,
  CaseId BIGINT NOT NULL,
  SelfAssistanceType VARCHAR(64) NOT NULL,
  SelfAssistance VARCHAR(128) NOT NULL,
  Estimate DOUBLE NOT NULL,
  Trm DOUBLE NOT NULL,
  Cie10Diagnosis VARCHAR(16) NOT NULL,
  CreatedAt VARCHAR(32) NOT NULL
);

CREATE OR REPLACE VIEW VwSummaryEventMOK AS
  SELECT CaseId, SelfAssistanceType, SelfAssistance, Estimate, Trm AS TRM,
         Cie10Diagnosis AS CIE10Diagnosis, CreatedAt AS GuaranteePaymentCreatedAt
  FROM GuaranteePayment;
