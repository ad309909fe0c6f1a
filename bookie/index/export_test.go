package index

// EncodeV1 is encodeV1 for the external upgrade test (upgrade_test.go).
var EncodeV1 = encodeV1
