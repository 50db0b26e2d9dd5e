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
}

extension KeyReply {
    /// The reply describing `key`.
    init(_ key: KeyDescription) {
        let metadata = key.metadata
        self.init(id: metadata.id, spec: metadata.spec, state: metadata.state.rawValue, description: metadata.description,
                  aliases: key.aliases, tags: metadata.tags, createdAt: metadata.createdAt, stateChangedAt: metadata.stateChangedAt,
                  currentVersion: metadata.currentVersion, minDecryptionVersion: metadata.minDecryptionVersion,
                  rotationPeriodDays: metadata.rotationPeriodDays, nextRotationAt: metadata.nextRotationAt,
                  destructionDate: metadata.destructionDate, expiresAt: metadata.expiresAt, exportable: metadata.exportable,
                  backupAllowed: metadata.backupAllowed, origin: metadata.origin,
                  minAvailableVersion: metadata.minAvailableVersion, contextRequired: metadata.contextRequired)
    }
}
