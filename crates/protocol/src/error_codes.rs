//! Hazelcast's client-protocol error codes (the subset ferrocast sends) and
//! the Java class names clients show for them.

pub const UNDEFINED: i32 = 0;
pub const AUTHENTICATION: i32 = 3;
pub const HAZELCAST: i32 = 18;
pub const HAZELCAST_INSTANCE_NOT_ACTIVE: i32 = 19;
pub const ILLEGAL_ARGUMENT: i32 = 23;
pub const ILLEGAL_STATE: i32 = 27;
pub const MEMBER_LEFT: i32 = 33;
pub const NULL_POINTER: i32 = 37;
pub const PARTITION_MIGRATING: i32 = 39;
pub const SPLIT_BRAIN_PROTECTION: i32 = 42;
pub const RETRYABLE_HAZELCAST: i32 = 46;
pub const TARGET_DISCONNECTED: i32 = 52;
pub const TARGET_NOT_MEMBER: i32 = 53;
pub const UNSUPPORTED_OPERATION: i32 = 61;
pub const WRONG_TARGET: i32 = 62;

/// The Java class name a Hazelcast member would report for `code`.
pub fn class_name(code: i32) -> &'static str {
    match code {
        AUTHENTICATION => "com.hazelcast.client.AuthenticationException",
        HAZELCAST_INSTANCE_NOT_ACTIVE => "com.hazelcast.core.HazelcastInstanceNotActiveException",
        ILLEGAL_ARGUMENT => "java.lang.IllegalArgumentException",
        ILLEGAL_STATE => "java.lang.IllegalStateException",
        MEMBER_LEFT => "com.hazelcast.core.MemberLeftException",
        NULL_POINTER => "java.lang.NullPointerException",
        PARTITION_MIGRATING => "com.hazelcast.spi.exception.PartitionMigratingException",
        RETRYABLE_HAZELCAST => "com.hazelcast.spi.exception.RetryableHazelcastException",
        SPLIT_BRAIN_PROTECTION => {
            "com.hazelcast.splitbrainprotection.SplitBrainProtectionException"
        }
        TARGET_DISCONNECTED => "com.hazelcast.spi.exception.TargetDisconnectedException",
        TARGET_NOT_MEMBER => "com.hazelcast.spi.exception.TargetNotMemberException",
        UNSUPPORTED_OPERATION => "java.lang.UnsupportedOperationException",
        WRONG_TARGET => "com.hazelcast.spi.exception.WrongTargetException",
        _ => "com.hazelcast.core.HazelcastException",
    }
}
