import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

extension Response {
    /// A JSON response of `bytes`.
    static func json(_ status: HTTPResponse.Status = .ok, _ bytes: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A reply of the API's wire contract (KeywardAPI), written by its own writer.
    static func reply(_ reply: some WritableReply, status: HTTPResponse.Status = .ok) -> Response {
        json(status, reply.json())
    }

    /// A JSON object written by `body`.
    static func object(_ status: HTTPResponse.Status = .ok, _ body: (inout JSONWriter) -> Void) -> Response {
        var writer = JSONWriter()
        writer.object(body)
        return json(status, writer.bytes)
    }
}

extension JSONWriter {
    /// A key's description, as `GET /v1/keys/{key}` returns it.
    mutating func key(_ key: KeyDescription) {
        object { json in
            json.keyMembers(key)
        }
    }

    mutating func keyMembers(_ key: KeyDescription) {
        let metadata = key.metadata
        member("id", metadata.id.description)
        member("spec", metadata.spec.rawValue)
        member("purpose", metadata.spec.purpose.rawValue)
        member("state", metadata.state.rawValue)
        member("description", metadata.description)
        member("aliases", strings: key.aliases)
        member("tags", dictionary: metadata.tags)
        member("createdAt", metadata.createdAt)
        member("stateChangedAt", metadata.stateChangedAt)
        member("currentVersion", Int(metadata.currentVersion))
        member("minDecryptionVersion", Int(metadata.minDecryptionVersion))
        member("rotationPeriodDays", metadata.rotationPeriodDays)
        member("nextRotationAt", metadata.nextRotationAt)
        member("destructionDate", metadata.destructionDate)
        member("expiresAt", metadata.expiresAt)
        member("exportable", metadata.exportable)
        member("backupAllowed", metadata.backupAllowed)
        member("origin", metadata.origin)
    }

    /// A public key: its spec, DER or raw bytes, and PEM where the spec has one.
    mutating func publicKeyMembers(_ key: PublicKey) {
        member("spec", key.spec.rawValue)
        member("publicKey", base64: key.representation)
        member("publicKeyPem", key.pem)
    }
}
