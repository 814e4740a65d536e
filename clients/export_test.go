package clients

// SilentDeaths is silentDeaths, for the tests.
var SilentDeaths = silentDeaths
