declare module 'orquesta:plugin/types@0.1.2' {
  /**
   * Name/value pairs: HTTP headers, query parameters, message attributes, config.
   */
  export type Fields = Array<[string, string]>;
  /**
   * Why a host call failed.
   */
  export type HostError = HostErrorDenied | HostErrorUnavailable | HostErrorInvalid | HostErrorTimeout | HostErrorFailed;
  /**
   * The tenant did not grant this capability, bucket, database, host or topic.
   */
  export interface HostErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * The capability is not available on this host.
   */
  export interface HostErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * The arguments were refused (bad name, bad URL, value too large, ...).
   */
  export interface HostErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * The call did not finish within its time limit.
   */
  export interface HostErrorTimeout {
    tag: 'timeout',
    val: string,
  }
  /**
   * The backend failed (database, network, upstream).
   */
  export interface HostErrorFailed {
    tag: 'failed',
    val: string,
  }
  /**
   * A plugin's typed failure. `error` is a short machine name (`ValidationError`,
   * `UpstreamUnavailable`): workflow `Retry`/`Catch` rules match it with
   * `ErrorEquals`. `cause` is the human explanation.
   */
  export interface Failure {
    error: string,
    cause: string,
  }
}
